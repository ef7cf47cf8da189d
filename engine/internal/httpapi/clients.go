package httpapi

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/billing-engine/billing/engine/store"
)

// clientJSON is a client as the API shows it.
type clientJSON struct {
	ClientID  string    `json:"client_id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Status    string    `json:"status"`
	CreatedAt timestamp `json:"created_at"`
	UpdatedAt timestamp `json:"updated_at"`
}

func toClientJSON(c store.Client) clientJSON {
	return clientJSON{ClientID: c.ID, Name: c.Name, Email: c.Email, Status: string(c.Status),
		CreatedAt: timestamp(c.CreatedAt), UpdatedAt: timestamp(c.UpdatedAt)}
}

// clientInput is the body of POST and PUT /api/v1/clients. On PUT an
// omitted field keeps its value.
type clientInput struct {
	ClientID *string `json:"client_id"`
	Name     *string `json:"name"`
	Email    *string `json:"email"`
	Status   *string `json:"status"`
}

// check validates the fields present; creating also requires name and
// email.
func (in *clientInput) check(creating bool) fieldErrors {
	var fe fieldErrors
	if in.ClientID != nil && creating && !validID(*in.ClientID) {
		fe.add("client_id", idRule)
	}
	switch {
	case in.Name != nil:
		fe.checkText("name", *in.Name, true, store.MaxNameLen)
	case creating:
		fe.add("name", ruleRequired)
	}
	switch {
	case in.Email != nil:
		if !validEmail(*in.Email) {
			fe.add("email", ruleEmail)
		}
	case creating:
		fe.add("email", ruleRequired)
	}
	if in.Status != nil && !store.ClientStatus(*in.Status).Valid() {
		fe.add("status", oneOf(store.ClientStatuses))
	}
	return fe
}

const clientsScope = "POST /api/v1/clients"

func (c *crud) createClient(w http.ResponseWriter, r *http.Request) {
	var in clientInput
	if !jsonBody(w, r, &in) {
		return
	}
	ik, ok := c.idempotencyKey(w, r, clientsScope, &in)
	if !ok {
		return
	}
	if fe := in.check(true); len(fe) > 0 {
		writeFieldErrors(w, r, fe)
		return
	}
	now := c.clock()
	cl := store.Client{ID: newID(), Name: *in.Name, Email: *in.Email, Status: store.ClientActive, CreatedAt: now, UpdatedAt: now}
	if in.ClientID != nil {
		cl.ID = *in.ClientID
	}
	if in.Status != nil {
		cl.Status = store.ClientStatus(*in.Status)
	}
	body, err := marshal(toClientJSON(cl))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	err = c.st.CreateClient(r.Context(), cl, ik.record(http.StatusCreated, body))
	switch {
	case errors.Is(err, store.ErrKeyUsed):
		if !c.replay(w, r, ik) {
			c.fail(w, r, err)
		}
	case errors.Is(err, store.ErrExists):
		WriteProblem(w, r, http.StatusConflict, "client "+cl.ID+" already exists", FieldError{Field: "client_id", Rule: "must not be in use"})
	case err != nil:
		c.fail(w, r, err)
	default:
		created(w, "/api/v1/clients/"+url.PathEscape(cl.ID), body)
	}
}

func (c *crud) getClient(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "client")
	if !ok {
		return
	}
	cl, err := c.st.GetClient(r.Context(), id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, toClientJSON(cl))
}

func (c *crud) listClients(w http.ResponseWriter, r *http.Request) {
	lq, ok := parseList(w, r, "status")
	if !ok {
		return
	}
	status := store.ClientStatus(lq.values.Get("status"))
	if status != "" && !status.Valid() {
		WriteProblem(w, r, http.StatusBadRequest, "invalid query parameters", FieldError{Field: "status", Rule: oneOf(store.ClientStatuses)})
		return
	}
	p, err := c.st.ListClients(r.Context(), store.ClientFilter{Status: status, CreatedFrom: lq.from, CreatedTo: lq.to, After: lq.cursor, Limit: lq.limit})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	out := page[clientJSON]{Items: make([]clientJSON, len(p.Items)), NextCursor: p.Next}
	for i, cl := range p.Items {
		out.Items[i] = toClientJSON(cl)
	}
	WriteJSON(w, http.StatusOK, out)
}

func (c *crud) updateClient(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "client")
	if !ok {
		return
	}
	var in clientInput
	if !jsonBody(w, r, &in) {
		return
	}
	fe := in.check(false)
	if in.ClientID != nil && *in.ClientID != id {
		fe.add("client_id", "must match the id in the path")
	}
	if len(fe) > 0 {
		writeFieldErrors(w, r, fe)
		return
	}
	cl, err := c.st.UpdateClient(r.Context(), id, func(cur store.Client) (store.Client, error) {
		if in.Name != nil {
			cur.Name = *in.Name
		}
		if in.Email != nil {
			cur.Email = *in.Email
		}
		if in.Status != nil {
			cur.Status = store.ClientStatus(*in.Status)
		}
		return cur, nil
	})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, toClientJSON(cl))
}

func (c *crud) deleteClient(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "client")
	if !ok {
		return
	}
	err := c.st.DeleteClient(r.Context(), id)
	if errors.Is(err, store.ErrHasTransactions) {
		WriteProblem(w, r, http.StatusConflict, "client "+id+" has transactions; delete or move them first",
			FieldError{Field: "client_id", Rule: "must have no transactions to be deleted"})
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
