// Package pipeline loads, checks and draws pipeline files: the YAML that
// tells the engine which topics to read, what to do with each record and
// where to send it.
//
// # The format
//
// A file holds one YAML document (version 1):
//
//	version: 1
//	application_id: ${BILLING_APPLICATION_ID:-billing}  # consumer groups, topic prefixes
//	data_dir: ./data              # embedded broker, databases, state, outbox (relative to the working directory)
//	schemas: ../schemas           # *.avsc, relative to this file
//	kafka:
//	  brokers: embedded           # "host:port,host:port", a YAML list, or "embedded"
//	  embedded_listen: 127.0.0.1:9092
//	  exactly_once: true
//	  create_topics: true
//	  partitions: 8               # for topics the engine creates
//	  replication_factor: 1
//	  version: "3.6.0"            # optional; default sarama's newest
//	  client_id: billing          # default the application id
//	  compression: snappy         # of produced records: none, gzip, snappy, lz4, zstd
//	  sasl: {mechanism: SCRAM-SHA-512, user: u, password: p}    # PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
//	  tls: {enabled: true, ca_file: ca.pem, cert_file: c.pem, key_file: k.pem,
//	        insecure_skip_verify: false, server_name: kafka}  # files relative to this file
//	http: {listen: 127.0.0.1:8080, advertise: http://127.0.0.1:8080, api_token: "", api_read_token: ""}
//	database: {dsn: embedded}     # or mysql://user:pass@tcp(host:3306)/db
//	email: {smtp_addr: "", from: billing@localhost}
//	topics:                       # per-topic overrides
//	  transactions.dlq: {partitions: 8, compact: false}
//	plugins:
//	  billing:
//	    command: ../bin/plugins/billing   # relative to this file
//	    args: []
//	    sha256: ""                # pins the binary when set
//	    timeout: 30s              # bounds one batch call
//	    config: {}                # passed to the plugin
//	pipelines:
//	  - name: processor           # [a-z0-9][a-z0-9._-]*; consumer group <app>-<name>
//	    source: {topic: transactions, schema: Transaction, max_batch: 500, max_wait: 5ms}
//	    stages:                   # in order; each a filter or a plugin
//	      - {name: valid, filter: amount_minor > 0 && len(currency) == 3}
//	      - {name: bill, plugin: billing, config: {}, outputs: {billed: transactions}}
//	    branches:                 # the first whose when holds takes the record
//	      - {name: approved, when: 'status == "APPROVED"', to: transactions.approved}
//	      - {name: other, default: true, to: transactions.dlq}
//	    errors: {retries: 3, backoff: 100ms, dlq: transactions.dlq}
//
// Every key is optional except where Validate says otherwise, and every
// unknown key is an error. The defaults are documented on the fields of
// File and its parts, and as the Default constants.
//
// # Environment variables
//
// Every scalar value (not keys) is interpolated before it is decoded:
// ${NAME} is the variable's value and an error when it is not set;
// ${NAME:-default} is the value, or default when the variable is unset or
// empty; $$ is a literal $. A plain value that interpolation changed is
// typed again, so `partitions: ${P:-8}` is a number. Inside a flow
// collection ({...} or [...]) quote a value that uses ${...}: its braces
// are YAML syntax there.
//
// # Errors
//
// Load reports problems of form (syntax, unknown keys, wrong types, unset
// variables) and Validate problems of meaning (names, topics, schemas,
// expressions, plugin binaries, settings). Each reports every problem it
// finds at once, as a List of *Error sorted by position, each printing as
// file:line:column: message. An expression error points at the problem
// inside the expression, escape sequences in quoted scalars and literal
// blocks (|) included; in a folded block (>) or a plain or quoted scalar
// that spans lines the position is approximate (the scalar's start, or a
// guess at the line).
//
// # Use
//
//	f, err := pipeline.Load("pipelines/billing.yaml")
//	if err != nil {
//		return err
//	}
//	if err := pipeline.Validate(f, pipeline.ValidateOptions{Builtin: inProcess}); err != nil {
//		return err
//	}
//	topics := f.TopicSpecs() // to create
//	fmt.Print(pipeline.Graph(f))
package pipeline
