package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/billing-engine/billing/engine/store"
)

// transactionJSON is a transaction as the API shows it.
type transactionJSON struct {
	TransactionID  string     `json:"transaction_id"`
	ClientID       string     `json:"client_id"`
	AmountMinor    int64      `json:"amount_minor"`
	Currency       string     `json:"currency"`
	Status         string     `json:"status"`
	Description    string     `json:"description"`
	CreatedAt      timestamp  `json:"created_at"`
	UpdatedAt      timestamp  `json:"updated_at"`
	BilledAt       *timestamp `json:"billed_at"`
	BillingCycleID *string    `json:"billing_cycle_id"`
}

func toTransactionJSON(t store.Transaction) transactionJSON {
	out := transactionJSON{TransactionID: t.ID, ClientID: t.ClientID, AmountMinor: t.AmountMinor, Currency: t.Currency,
		Status: string(t.Status), Description: t.Description, CreatedAt: timestamp(t.CreatedAt), UpdatedAt: timestamp(t.UpdatedAt)}
	if !t.BilledAt.IsZero() {
		b := timestamp(t.BilledAt)
		out.BilledAt = &b
	}
	if t.BillingCycleID != "" {
		out.BillingCycleID = &t.BillingCycleID
	}
	return out
}

// createStatuses are the statuses a transaction may be created with.
var createStatuses = []store.TxStatus{store.StatusApproved, store.StatusDeclined}

// transactionInput is the body of POST /api/v1/transactions.
type transactionInput struct {
	TransactionID *string `json:"transaction_id"`
	ClientID      *string `json:"client_id"`
	AmountMinor   *int64  `json:"amount_minor"`
	Currency      *string `json:"currency"`
	Status        *string `json:"status"`
	Description   *string `json:"description"`
}

func (in *transactionInput) check() fieldErrors {
	var fe fieldErrors
	if in.TransactionID != nil && !validID(*in.TransactionID) {
		fe.add("transaction_id", idRule)
	}
	switch {
	case in.ClientID == nil:
		fe.add("client_id", ruleRequired)
	case !validID(*in.ClientID):
		fe.add("client_id", idRule)
	}
	if in.AmountMinor == nil {
		fe.add("amount_minor", ruleRequired)
	} else {
		fe.checkAmount("amount_minor", *in.AmountMinor)
	}
	if in.Currency == nil {
		fe.add("currency", ruleRequired)
	} else {
		fe.checkCurrency("currency", *in.Currency)
	}
	if in.Status != nil && *in.Status != string(store.StatusApproved) && *in.Status != string(store.StatusDeclined) {
		fe.add("status", oneOf(createStatuses)+" when created")
	}
	if in.Description != nil {
		fe.checkText("description", *in.Description, false, store.MaxDescriptionLen)
	}
	return fe
}

// transactionUpdate is the body of PUT /api/v1/transactions/{id}. An
// omitted field keeps its value; client_id, amount_minor and currency
// cannot change, and may be given only with their current values.
type transactionUpdate struct {
	TransactionID  *string `json:"transaction_id"`
	ClientID       *string `json:"client_id"`
	AmountMinor    *int64  `json:"amount_minor"`
	Currency       *string `json:"currency"`
	Status         *string `json:"status"`
	Description    *string `json:"description"`
	BillingCycleID *string `json:"billing_cycle_id"`
}

// check validates what can be checked without the current row.
func (in *transactionUpdate) check(id string) fieldErrors {
	var fe fieldErrors
	if in.TransactionID != nil && *in.TransactionID != id {
		fe.add("transaction_id", "must match the id in the path")
	}
	if in.Status != nil && !store.TxStatus(*in.Status).Valid() {
		fe.add("status", oneOf(store.TxStatuses))
	}
	if in.Description != nil {
		fe.checkText("description", *in.Description, false, store.MaxDescriptionLen)
	}
	if in.BillingCycleID != nil && !validID(*in.BillingCycleID) {
		fe.add("billing_cycle_id", idRule)
	}
	return fe
}

// apply returns cur changed as in asks, or the problems: 422 for fields
// that may not change, 409 for an illegal status change.
func (in *transactionUpdate) apply(cur store.Transaction) (store.Transaction, error) {
	var fe fieldErrors
	if in.ClientID != nil && *in.ClientID != cur.ClientID {
		fe.add("client_id", "immutable: cannot change after creation")
	}
	if in.AmountMinor != nil && *in.AmountMinor != cur.AmountMinor {
		fe.add("amount_minor", "immutable: cannot change after creation")
	}
	if in.Currency != nil && *in.Currency != cur.Currency {
		fe.add("currency", "immutable: cannot change after creation")
	}
	next := cur
	if in.Status != nil {
		next.Status = store.TxStatus(*in.Status)
	}
	if in.Description != nil {
		next.Description = *in.Description
	}
	if in.BillingCycleID != nil {
		if next.Status != store.StatusBilled || (cur.BillingCycleID != "" && cur.BillingCycleID != *in.BillingCycleID) {
			fe.add("billing_cycle_id", "may be set only when the status becomes BILLED")
		}
		next.BillingCycleID = *in.BillingCycleID
	}
	if len(fe) > 0 {
		return cur, fe
	}
	if !store.CanTransition(cur.Status, next.Status) {
		rule := fmt.Sprintf("illegal transition %s -> %s", cur.Status, next.Status)
		if allowed := store.NextStatuses(cur.Status); len(allowed) > 0 {
			rule += fmt.Sprintf(" (%s may become %s)", cur.Status, names(allowed))
		} else {
			rule += fmt.Sprintf(" (%s is final)", cur.Status)
		}
		return cur, &conflict{detail: "the status change is not allowed", field: FieldError{Field: "status", Rule: rule}}
	}
	return next, nil
}

const transactionsScope = "POST /api/v1/transactions"

func (c *crud) createTransaction(w http.ResponseWriter, r *http.Request) {
	var in transactionInput
	if !jsonBody(w, r, &in) {
		return
	}
	ik, ok := c.idempotencyKey(w, r, transactionsScope, &in)
	if !ok {
		return
	}
	if fe := in.check(); len(fe) > 0 {
		writeFieldErrors(w, r, fe)
		return
	}
	now := c.clock()
	t := store.Transaction{ID: newID(), ClientID: *in.ClientID, AmountMinor: *in.AmountMinor, Currency: *in.Currency,
		Status: store.StatusApproved, CreatedAt: now, UpdatedAt: now}
	if in.TransactionID != nil {
		t.ID = *in.TransactionID
	}
	if in.Status != nil {
		t.Status = store.TxStatus(*in.Status)
	}
	if in.Description != nil {
		t.Description = *in.Description
	}
	body, err := marshal(toTransactionJSON(t))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	err = c.st.CreateTransaction(r.Context(), t, ik.record(http.StatusCreated, body))
	switch {
	case errors.Is(err, store.ErrKeyUsed):
		if !c.replay(w, r, ik) {
			c.fail(w, r, err)
		}
	case errors.Is(err, store.ErrExists):
		WriteProblem(w, r, http.StatusConflict, "transaction "+t.ID+" already exists", FieldError{Field: "transaction_id", Rule: "must not be in use"})
	case errors.Is(err, store.ErrUnknownClient):
		writeFieldErrors(w, r, fieldErrors{{Field: "client_id", Rule: "must name an existing client"}})
	case errors.Is(err, store.ErrClientClosed):
		writeFieldErrors(w, r, fieldErrors{{Field: "client_id", Rule: "must name a client that is not CLOSED"}})
	case err != nil:
		c.fail(w, r, err)
	default:
		created(w, "/api/v1/transactions/"+url.PathEscape(t.ID), body)
	}
}

func (c *crud) getTransaction(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "transaction")
	if !ok {
		return
	}
	t, err := c.st.GetTransaction(r.Context(), id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, toTransactionJSON(t))
}

func (c *crud) listTransactions(w http.ResponseWriter, r *http.Request) {
	lq, ok := parseList(w, r, "client_id", "status")
	if !ok {
		return
	}
	status := store.TxStatus(lq.values.Get("status"))
	if status != "" && !status.Valid() {
		WriteProblem(w, r, http.StatusBadRequest, "invalid query parameters", FieldError{Field: "status", Rule: oneOf(store.TxStatuses)})
		return
	}
	p, err := c.st.ListTransactions(r.Context(), store.TransactionFilter{ClientID: lq.values.Get("client_id"), Status: status,
		CreatedFrom: lq.from, CreatedTo: lq.to, After: lq.cursor, Limit: lq.limit})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	out := page[transactionJSON]{Items: make([]transactionJSON, len(p.Items)), NextCursor: p.Next}
	for i, t := range p.Items {
		out.Items[i] = toTransactionJSON(t)
	}
	WriteJSON(w, http.StatusOK, out)
}

func (c *crud) updateTransaction(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "transaction")
	if !ok {
		return
	}
	var in transactionUpdate
	if !jsonBody(w, r, &in) {
		return
	}
	if fe := in.check(id); len(fe) > 0 {
		writeFieldErrors(w, r, fe)
		return
	}
	t, err := c.st.UpdateTransaction(r.Context(), id, in.apply)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, toTransactionJSON(t))
}

func (c *crud) deleteTransaction(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "transaction")
	if !ok {
		return
	}
	err := c.st.DeleteTransaction(r.Context(), id)
	if errors.Is(err, store.ErrBilled) {
		WriteProblem(w, r, http.StatusConflict, "transaction "+id+" has been billed and cannot be deleted",
			FieldError{Field: "status", Rule: "must not have been billed to be deleted"})
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
