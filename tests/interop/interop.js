// interop.js - rsq (the command-line tool, built from rsq.h) and ioredis, a widely used
// Node.js client, on the same streams. Run by interop_test.sh, which starts a private
// redis-server and sets:
//   REDIS_SOCK  its unix socket (ioredis connects there)
//   RSQ_URL     the URL the rsq tool uses (redis://127.0.0.1:PORT)
//   RSQ_BIN     the rsq tool
// Checks, with exact counts:
//   a) ioredis XADDs (payload plus other fields, one entry with no payload at all);
//      `rsq work --from 0 --idle-exit 1` prints every payload in order and acks it all;
//      with --exec, the RSQ_ID it sees is the ID ioredis got back.
//   b) `rsq pub` (stdin lines, headers) and `rsq pub STREAM PAYLOAD`; an ioredis
//      XREADGROUP consumer reads every entry with the same IDs, payload and headers
//      intact, and acks.
//   c) reclaim across clients: an ioredis consumer reads entries and "crashes" (never
//      acks); `rsq work --visibility 500` takes them over and handles every entry once.
//      Then the reverse: `rsq work --exec 'sleep 5'` is SIGKILLed while holding entries;
//      ioredis XAUTOCLAIMs exactly those, reads the rest, and acks all.
// Prints "interop: ok", or "interop: FAIL: ..." and exits 1.
'use strict';

const { spawn } = require('child_process');
const fs = require('fs');
const Redis = require('ioredis');

const SOCK = process.env.REDIS_SOCK;
const URL = process.env.RSQ_URL;
const RSQ = process.env.RSQ_BIN;
const children = new Set(); // processes started here, ended by pid on failure

class Failure extends Error {}
function check(cond, what) {
  if (!cond) throw new Failure(what);
}
function eq(got, want, what) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  check(g === w, `${what}: got ${g}, want ${w}`);
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Runs the rsq tool with args (and stdin text); resolves to { code, signal, out, err }.
// Refuses to wait longer than limitMs.
function rsq(args, { input = null, limitMs = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(RSQ, ['-u', URL, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Failure(`rsq ${args.join(' ')}: still running after ${limitMs} ms`));
    }, limitMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, out, err });
    });
    if (input !== null) child.stdin.end(input);
    else child.stdin.end();
  });
}

// An ioredis reply's field list [k1, v1, k2, v2, ...] as an object.
function fields(list) {
  const o = {};
  for (let i = 0; i + 1 < list.length; i += 2) o[list[i]] = list[i + 1];
  return o;
}

// Reads a group with XREADGROUP as `consumer` until nothing is left; returns the entries.
async function readAll(r, stream, group, consumer, count = 7) {
  const got = [];
  for (;;) {
    const reply = await r.xreadgroup('GROUP', group, consumer, 'COUNT', count, 'STREAMS', stream, '>');
    if (!reply) break;
    for (const [, entries] of reply) for (const [id, f] of entries) got.push({ id, f: fields(f) });
  }
  return got;
}

async function pendingCount(r, stream, group) {
  return Number((await r.xpending(stream, group))[0]);
}

// a) ioredis writes, rsq consumes
async function ioredisToRsq(r) {
  const stream = 'interop:a';
  const payloads = [];
  const ids = [];
  for (let i = 1; i <= 40; i++) {
    const p = i % 10 === 0 ? `héllo wörld ✓ ${i}` : `message ${i}`; // UTF-8 passes through
    payloads.push(p);
    // payload not first, and other fields around it
    ids.push(await r.xadd(stream, '*', 'source', 'ioredis', 'payload', p, 'seq', String(i)));
  }
  ids.push(await r.xadd(stream, '*', 'temperature', '21.5', 'unit', 'C')); // no payload field
  payloads.push('');

  const res = await rsq(['work', stream, '-g', 'rsq-readers', '--idle-exit', '1', '--from', '0']);
  eq(res.code, 0, `a) rsq work exit status (stderr: ${res.err})`);
  eq(res.err, `rsq: created group rsq-readers on ${stream} at 0: it takes the whole stream, messages published before it included\n`,
    'a) rsq work stderr: the note that it created the group, at 0');
  eq(res.out.split('\n').slice(0, -1), payloads, 'a) payloads printed by rsq work');
  eq(await pendingCount(r, stream, 'rsq-readers'), 0, 'a) entries left pending by rsq work');
  const info = (await r.xinfo('GROUPS', stream)).map(fields);
  eq(info[0]['last-delivered-id'], ids[ids.length - 1], 'a) last-delivered-id of the group');

  // --exec: the command sees the entry's ID and delivery count, the payload on stdin
  const ex = await rsq(['work', stream, '-g', 'rsq-exec', '--idle-exit', '1', '--from', '0', '--exec',
    'printf "%s %s %s\\n" "$RSQ_ID" "$RSQ_DELIVERIES" "$(cat)"']);
  eq(ex.code, 0, `a) rsq work --exec exit status (stderr: ${ex.err})`);
  eq(ex.out.split('\n').slice(0, -1), ids.map((id, i) => `${id} 1 ${payloads[i]}`), 'a) --exec lines (ID, deliveries, payload)');
  eq(await pendingCount(r, stream, 'rsq-exec'), 0, 'a) entries left pending by rsq work --exec');
  return ids.length;
}

// b) rsq publishes, ioredis consumes
async function rsqToIoredis(r) {
  const stream = 'interop:b';
  const lines = [];
  for (let i = 1; i <= 60; i++) lines.push(i === 30 ? `tab\there, "quotes", ✓ ${i}` : `line ${i}`);
  await r.xgroup('CREATE', stream, 'node-readers', '$', 'MKSTREAM');
  const pub = await rsq(['pub', stream, '-H', 'origin=rsq-cli', '-H', 'kind=test'], { input: lines.join('\n') + '\n' });
  eq(pub.code, 0, `b) rsq pub exit status (stderr: ${pub.err})`);
  const ids = pub.out.split('\n').slice(0, -1);
  eq(ids.length, lines.length, 'b) IDs printed by rsq pub');
  const one = await rsq(['pub', stream, 'a single message', '-H', 'origin=rsq-cli']);
  eq(one.code, 0, `b) rsq pub STREAM PAYLOAD exit status (stderr: ${one.err})`);
  ids.push(one.out.trim());
  lines.push('a single message');

  const got = await readAll(r, stream, 'node-readers', 'node-1');
  eq(got.length, lines.length, 'b) entries read by ioredis');
  eq(got.map((e) => e.id), ids, 'b) IDs read by ioredis vs printed by rsq pub');
  eq(got.map((e) => e.f.payload), lines, 'b) payloads read by ioredis');
  for (let i = 0; i < got.length; i++) {
    const want = i < 60 ? { payload: lines[i], origin: 'rsq-cli', kind: 'test' } : { payload: lines[i], origin: 'rsq-cli' };
    eq(got[i].f, want, `b) fields of entry ${i + 1}`);
  }
  eq(Number(await r.xack(stream, 'node-readers', ...ids)), ids.length, 'b) XACK count');
  eq(await pendingCount(r, stream, 'node-readers'), 0, 'b) entries left pending');
  return ids.length;
}

// c1) an ioredis consumer crashes holding entries; rsq reclaims them
async function ioredisCrashRsqReclaims(r) {
  const stream = 'interop:c';
  const want = [];
  for (let i = 1; i <= 20; i++) {
    want.push(`job ${i}`);
    await r.xadd(stream, '*', 'payload', `job ${i}`);
  }
  await r.xgroup('CREATE', stream, 'workers', '0');
  const doomed = new Redis({ path: SOCK, maxRetriesPerRequest: 1 });
  const taken = await doomed.xreadgroup('GROUP', 'workers', 'node-crashed', 'COUNT', 8, 'STREAMS', stream, '>');
  eq(taken[0][1].length, 8, 'c1) entries taken by the ioredis consumer');
  doomed.disconnect(); // "crash": never acks
  eq(await pendingCount(r, stream, 'workers'), 8, 'c1) entries pending on the crashed consumer');

  const res = await rsq(['work', stream, '-g', 'workers', '-n', 'rsq-rescuer', '--visibility', '500', '--idle-exit', '2']);
  eq(res.code, 0, `c1) rsq work exit status (stderr: ${res.err})`);
  const out = res.out.split('\n').slice(0, -1);
  // every job once; the 12 never delivered in order, the 8 reclaimed in order (which
  // group comes first depends on how soon rsq starts after the "crash")
  eq([...out].sort(), [...want].sort(), 'c1) messages handled by rsq');
  eq(out.filter((p) => want.indexOf(p) >= 8), want.slice(8), 'c1) the 12 never delivered');
  eq(out.filter((p) => want.indexOf(p) < 8), want.slice(0, 8), 'c1) the 8 reclaimed from the crashed consumer');
  eq(await pendingCount(r, stream, 'workers'), 0, 'c1) entries left pending');
  const consumers = (await r.xinfo('CONSUMERS', stream, 'workers')).map(fields);
  eq(consumers.find((c) => c.name === 'node-crashed').pending, 0, 'c1) still pending on node-crashed');
  return 20;
}

// The pids of a process's descendants (Linux /proc; [] where it is missing): the
// --exec command rsq runs in its own process group, which a kill of rsq leaves running.
function descendants(pid) {
  let kids = [];
  try {
    kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch (e) {
    return [];
  }
  return kids.concat(...kids.map(descendants));
}

// c2) rsq is SIGKILLed holding entries; ioredis reclaims them with XAUTOCLAIM
async function rsqKilledIoredisReclaims(r) {
  const stream = 'interop:d';
  const want = [];
  for (let i = 1; i <= 10; i++) {
    want.push(`task ${i}`);
    await r.xadd(stream, '*', 'payload', `task ${i}`);
  }
  const child = spawn(RSQ, ['-u', URL, 'work', stream, '-g', 'workers', '-n', 'rsq-doomed', '--from', '0',
    '--count', '4', '--exec', 'sleep 5'], { stdio: 'ignore' });
  children.add(child);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  // wait until it holds its first read (4 entries) and runs the command on the first
  let held = 0;
  let helpers = [];
  for (let i = 0; i < 100; i++) {
    held = await pendingCount(r, stream, 'workers').catch(() => 0); // NOGROUP until rsq creates it
    helpers = descendants(child.pid);
    if (held === 4 && helpers.length > 0) break;
    await sleep(50);
  }
  eq(held, 4, 'c2) entries held by the rsq consumer before the kill');
  child.kill('SIGKILL');
  const how = await exited;
  children.delete(child);
  eq(how.signal, 'SIGKILL', 'c2) how rsq ended');
  for (const pid of helpers) { try { process.kill(pid, 'SIGKILL'); } catch (e) { /* already gone */ } }
  eq(await pendingCount(r, stream, 'workers'), 4, 'c2) entries pending after the kill');

  // too early: nothing is idle for 60 s yet
  let [cursor, claimed] = await r.xautoclaim(stream, 'workers', 'node-rescuer', 60000, '0-0', 'COUNT', 100);
  eq(claimed.length, 0, 'c2) XAUTOCLAIM before the entries were idle long enough');
  await sleep(400);
  const rescued = [];
  cursor = '0-0';
  do {
    [cursor, claimed] = await r.xautoclaim(stream, 'workers', 'node-rescuer', 300, cursor, 'COUNT', 3);
    for (const [id, f] of claimed) rescued.push({ id, f: fields(f) });
  } while (cursor !== '0-0');
  eq(rescued.map((e) => e.f.payload), want.slice(0, 4), 'c2) entries reclaimed by ioredis');
  const detail = await r.xpending(stream, 'workers', '-', '+', 100);
  // rsq counts deliveries to a handler only: the first of its batch reached one (1,
  // then XAUTOCLAIM's 2); the three prefetched behind it never did (0, then 1)
  eq(detail.map((d) => [d[1], Number(d[3])]), rescued.map((e, i) => ['node-rescuer', i === 0 ? 2 : 1]), 'c2) owner and delivery count after XAUTOCLAIM');
  const rest = await readAll(r, stream, 'workers', 'node-rescuer');
  eq(rest.map((e) => e.f.payload), want.slice(4), 'c2) entries never delivered, read by ioredis');
  const all = rescued.concat(rest).map((e) => e.id);
  eq(Number(await r.xack(stream, 'workers', ...all)), 10, 'c2) XACK count');
  eq(await pendingCount(r, stream, 'workers'), 0, 'c2) entries left pending');
  return 10;
}

async function main() {
  check(SOCK && URL && RSQ, 'REDIS_SOCK, RSQ_URL and RSQ_BIN must be set (run interop_test.sh)');
  const r = new Redis({ path: SOCK, maxRetriesPerRequest: 1 });
  try {
    const a = await ioredisToRsq(r);
    console.log(`interop: a) ioredis XADD -> rsq work: ${a} entries, every payload, all acked`);
    const b = await rsqToIoredis(r);
    console.log(`interop: b) rsq pub -> ioredis XREADGROUP: ${b} entries, IDs, payloads and headers intact, all acked`);
    const c1 = await ioredisCrashRsqReclaims(r);
    console.log(`interop: c) ioredis consumer crashed holding 8 of ${c1}; rsq work reclaimed them and handled all ${c1}`);
    const c2 = await rsqKilledIoredisReclaims(r);
    console.log(`interop: c) rsq work SIGKILLed holding 4 of ${c2}; ioredis XAUTOCLAIMed exactly those, read and acked all ${c2}`);
  } finally {
    r.disconnect();
  }
  console.log('interop: ok');
}

main().catch((e) => {
  for (const child of children) child.kill('SIGKILL');
  console.error(`interop: FAIL: ${e instanceof Failure ? e.message : e.stack}`);
  process.exit(1);
});
