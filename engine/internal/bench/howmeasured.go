package bench

// HowMeasured is the "How measured" section of BENCHMARKS.md: how
// BenchmarkScenarios (engine/scenarios_bench_test.go) measures.
const HowMeasured = `Each scenario runs on a fresh embedded broker (kfake, in the benchmark's
process) holding the same pre-produced transactions, and runs what it
measures as a child process: the engine binary (` + "`engine run FILE`" + `, GOGC 200
as it ships) or, for the ceiling, ` + "`engine/internal/bench/ceiling`" + `: a plain
sarama consumer group and async producer with the engine's producer
batching; no decoding, no transactions, offsets auto-committed.

- **records/s**: from the first record the child consumed until every
  record was committed on its way out, read from the child's
  ` + "`/api/v1/stats`" + ` every 5 ms (the engine counts a batch once its transaction
  commits). A stream scenario's throughput phase runs several times (listed
  below), each on a fresh broker and child, and the table has the median
  run (its records/s and CPU): one run of a few seconds on two cores varies
  by 15% and more. Billing: until the database holds every transaction BILLED and
  the emails-sent log every email (transactions/s). **Ratio**: over the
  ceiling's records/s.
- **CPU s per 100k records**: the user and system CPU time of the child
  and of the plugin processes it started, over the same interval
  (` + "`/proc/PID/stat`" + `), per 100,000 records. The broker, the load generator, the
  SMTP sink and MariaDB are not in it.
- **Peak RSS**: the high-water mark (VmHWM) of the child plus those of its
  plugin processes, over both phases.
- **Latency** (p50/p99/p999): after the throughput phase, transactions are
  produced at a fixed rate (the "latency at" column) with franz-go (no
  linger), each stamped with the time of its produce call; a read_committed
  franz-go consumer of the scenario's output topics (the branch topics;
  ` + "`bench.passthrough`" + ` for the ceiling; ` + "`transactions.billed`" + ` for billing: billed
  in the database and back through the processor) takes the time to its
  arrival. The first second is warm-up and left out. The engine commits
  each batch in a Kafka transaction (a transaction carries the batches of
  the partitions ready when it begins), and a batch closes at
  max_batch records or after max_wait (listed below), so batching and the
  commit are most of it; the pipeline files are as a user would run them.
- **Status queries**: one client asks for the status of random
  transactions already processed (` + "`GET /api/v1/transactions/{id}/status`" + `),
  one query at a time on one keep-alive connection, at most a fixed rate
  (listed in the setup; the benchmark's log gives the rate achieved, lower
  when answers are slow, since a late query is not made up for), while the
  status pipeline consumes the records at full speed; the latency columns
  are the query's, the other columns the pipeline's. The client
  (` + "`engine/internal/bench/querier`" + `) is a process of its own, as a real client is.
  A query's time runs from just before the client writes the request until
  the answer's last segment reaches the client's socket, as the kernel
  stamps it on arrival (SO_TIMESTAMPNS): the engine's answer as a client
  on another machine would get it. The client shares the two cores that
  the engine and the broker keep busy, and then waits for one before it
  reads an answer, even at nice -10 (where the system allows it, root or
  CAP_SYS_NICE), which did not make it preempt a task in mid-slice on this
  kernel: the ` + "`-round-trip`" + ` rows are the same answers timed until the client
  had read them, that wait included.
  ` + "`queries`" + ` asks the one instance; ` + "`queries-2`" + ` runs two instances of the application,
  one core each (GOMAXPROCS=1), and asks one of them, which answers the
  keys of its partitions itself and forwards the others to their owner
  (rows for each; records/s and CPU are the two instances' together).

Every process shares the machine's cores: the broker and the load
generator run beside the child.
`
