# scale.gp - the charts of `make bench-scale` (bench/scale.c's CSV files).
# gnuplot -e "dir='build/scale'" bench/scale.gp  ->  dir/scale.png, dir/scale.svg
if (!exists("dir")) dir = 'build/scale'
set datafile separator ','
pending = dir.'/pending.csv'
consumers = dir.'/consumers.csv'
groups = dir.'/groups.csv'
layout = dir.'/layout.csv'

do for [out in "png svg"] {
  if (out eq "png") { set terminal pngcairo size 1400,1000 font ",10" } else { set terminal svg size 1400,1000 font ",10" dynamic }
  set output dir.'/scale.'.out
  set multiplot layout 2,2 title "rsq: cost as the work grows (issue 19); flat lines are the goal"
  set grid
  # (L) pending-list size
  set title "Pending-list size L: per-message cost (right) stays flat; admin calls (left)"
  set logscale x 10
  set logscale y 10
  set xlabel "entries pending (delivered, not acked)"
  set ylabel "ms per call (log)"
  set y2label "consume+ack, us per message"
  set y2range [0:10]
  set y2tics
  set ytics nomirror
  set key top left box opaque font ",9"
  set yrange [0.01:1000000]
  plot pending skip 1 using 1:($7*1000) with linespoints lw 2 title "reclaim pass: 100 idle behind L (XAUTOCLAIM)", \
       ''      skip 1 using 1:($9*1000) with linespoints lw 2 title "reclaim pass (XPENDING+XCLAIM)", \
       ''      skip 1 using 1:11 with linespoints title "rsq\\_stream\\_stats", \
       ''      skip 1 using 1:12 with linespoints title "rsq\\_trim\\_safe", \
       ''      skip 1 using 1:13 with linespoints title "rsq\\_retire\\_idle\\_consumers", \
       ''      skip 1 using 1:4 axes x1y2 with linespoints dt 2 lw 2 title "consume+ack us/msg, TCP (right)", \
       ''      skip 1 using 1:5 axes x1y2 with linespoints dt 2 lw 2 title "consume+ack us/msg, unix (right)", \
       ''      skip 1 using 1:(1e6/$6) axes x1y2 with linespoints dt 3 title "control: no pending list, same server (right)"
  unset y2tics
  unset y2label
  set ytics mirror

  set key top left box opaque font ",10"
  set autoscale y

  # (N) consumers
  set title "Consumers N in one group (processes): aggregate and fairness"
  set logscale x 2
  unset logscale y
  set xlabel "consumers"
  set ylabel "aggregate messages/s"
  set yrange [0:*]
  set y2label "fairness: fewest / most handled"
  set y2range [0:1.05]
  set y2tics
  set ytics nomirror
  plot consumers skip 1 using 1:3 with linespoints lw 2 title "aggregate msgs/s", \
       ''        skip 1 using 1:5 axes x1y2 with linespoints dt 2 title "fairness (right)"
  unset y2tics
  unset y2label
  set ytics mirror
  set autoscale y

  # (G) groups
  set title "Groups G on one stream: safe trim and stats grow with groups"
  set logscale y 10
  set logscale x 2
  set xlabel "groups"
  set ylabel "ms per call (log)"
  set yrange [0.01:1000000]
  set y2label "publish, us per message"
  set y2range [0:10]
  set y2tics
  set ytics nomirror
  plot groups skip 1 using 1:4 with linespoints lw 2 title "rsq\\_trim\\_safe", \
       ''     skip 1 using 1:5 with linespoints lw 2 title "rsq\\_stream\\_stats", \
       ''     skip 1 using 1:6 with linespoints title "retire G consumers", \
       ''     skip 1 using 1:7 with linespoints dt 4 title "rsq\\_stream\\_stats, every group 10k behind", \
       ''     skip 1 using 1:2 axes x1y2 with linespoints dt 2 title "publish (right)", \
       ''     skip 1 using 1:3 axes x1y2 with linespoints dt 2 title "publish, safe trim every 1000 (right)"
  unset y2tics
  unset y2label
  set ytics mirror
  set autoscale y

  unset logscale y

  # (P) priority levels x shards
  set title "Priority levels x shards on one node: consume+ack cost per message"
  set logscale x 2
  set xlabel "shards"
  set ylabel "us per message"
  set yrange [0:*]
  plot for [lv in "1 2 4 8"] layout skip 1 using 2:($1 == lv+0 ? $3 : 1/0) with linespoints lw 2 title lv." level(s)"
  set autoscale y
  unset multiplot
  unset output
}
