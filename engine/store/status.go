package store

import "fmt"

// transitions is the transaction state machine: the statuses each status
// may change to (besides itself). See the package documentation.
var transitions = map[TxStatus][]TxStatus{
	StatusApproved: {StatusBilled, StatusDeclined, StatusRefunded},
	StatusBilled:   {StatusRefunded},
}

// CanTransition reports whether a transaction in status from may change to
// status to. A status may always "change" to itself.
func CanTransition(from, to TxStatus) bool {
	if from == to {
		return from.Valid()
	}
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// NextStatuses returns the statuses from may change to, itself excluded.
func NextStatuses(from TxStatus) []TxStatus {
	return append([]TxStatus(nil), transitions[from]...)
}

func checkTransition(from, to TxStatus) error {
	if !CanTransition(from, to) {
		return fmt.Errorf("%w: %s -> %s", ErrIllegalTransition, from, to)
	}
	return nil
}
