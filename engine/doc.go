// Package engine is the public API for running YAML stream pipelines on
// Kafka: load and validate a pipeline file, run it, draw its topology, or run
// the embedded broker.
//
//	e, err := engine.New("pipelines/billing.yaml", engine.WithProcessor("branch", router.New))
//	if err != nil { ... }
//	err = e.Run(ctx) // until ctx ends; then finishes and commits the batches in hand
//
// Plugin authors use package engine/sdk instead.
package engine
