// A tracer for bench/steering.sh: nettrace's hooks, with the steering hooks
// when the first argument is "steering", reading the steering maps once a
// second as `nettrace steering` does. Prints {"ready":true} once attached, and
// {"records":N,"drops":N} on SIGTERM.
const { Tracer, FlowMonitor, SteeringMonitor } = require('../dist/src');

const steering = process.argv[2] === 'steering';
const tracer = Tracer.start({ steering });
let records = 0;
tracer.onBatch((c) => {
  while (c.next()) records++;
});
const monitor = steering ? new SteeringMonitor(new FlowMonitor(tracer)) : undefined;
process.stdout.write('{"ready":true}\n');
const timer = setInterval(() => monitor?.sample(), 1000);
process.on('SIGTERM', () => {
  clearInterval(timer);
  tracer.stop().then(() => {
    const s = tracer.stats();
    process.stdout.write(JSON.stringify({ records, drops: s.drops }) + '\n');
    process.exit(0);
  });
});
