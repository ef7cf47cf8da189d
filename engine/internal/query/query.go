// Package query answers interactive queries on the engine's tables from
// whichever instance owns the key's partition: locally when this instance
// owns it, otherwise by forwarding the request to the owner, found through
// the consumer group's members (each advertises its HTTP URL as member
// user data).
package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/billing-engine/billing/engine/internal/pollnet"
	"github.com/billing-engine/billing/engine/internal/state"
	"github.com/billing-engine/billing/engine/internal/stream"
)

// Errors a query may return.
var (
	ErrUnknownTable = errors.New("query: unknown table")
	ErrNotFound     = errors.New("query: key not found")
	ErrRestoring    = errors.New("query: table partition is restoring")
	ErrNoOwner      = errors.New("query: no instance owns the partition yet")
)

// Table describes where a table's partitions live.
type Table struct {
	// Name of the table.
	Name string
	// Topic is the input topic whose partition p holds the table's
	// partition p; Partitions is its partition count.
	Topic      string
	Partitions int32
	// Group is the consumer group that consumes Topic.
	Group string
}

// Answer is a lookup's result.
type Answer struct {
	Table     string          `json:"table"`
	Key       string          `json:"key"`
	Value     json.RawMessage `json:"value"`
	Partition int32           `json:"partition"`
	ServedBy  string          `json:"served_by"`
}

// Router answers queries. It is safe for concurrent use.
type Router struct {
	store   *state.Store
	tracker *stream.Tracker
	self    string
	admin   func() (sarama.ClusterAdmin, error)
	tables  map[string]Table
	client  *http.Client

	mu      sync.Mutex
	members map[string]memberCache // group -> members
}

type memberCache struct {
	at         time.Time
	members    []member
	refreshing bool // a background refresh is under way
}

type member struct {
	url   string
	parts map[string][]int32
}

// NewRouter returns a Router over tables. self is this instance's
// advertised URL; admin opens a cluster admin client when needed.
func NewRouter(store *state.Store, tracker *stream.Tracker, self string, admin func() (sarama.ClusterAdmin, error), tables []Table) *Router {
	m := make(map[string]Table, len(tables))
	for _, t := range tables {
		m[t.Name] = t
	}
	return &Router{
		store: store, tracker: tracker, self: strings.TrimRight(self, "/"), admin: admin, tables: m,
		client:  &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: pollnet.DialContext, MaxIdleConnsPerHost: 8, IdleConnTimeout: 90 * time.Second}},
		members: map[string]memberCache{},
	}
}

// Tables returns the names of the queryable tables.
func (r *Router) Tables() []string {
	var out []string
	for name := range r.tables {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Local looks key up in this instance's store only. It answers only for
// partitions this instance owns now: ErrNoOwner otherwise.
func (r *Router) Local(table, key string) (Answer, error) {
	t, ok := r.tables[table]
	if !ok {
		return Answer{}, fmt.Errorf("%w %q", ErrUnknownTable, table)
	}
	p := stream.PartitionFor([]byte(key), t.Partitions)
	if !r.tracker.Owns(t.Group, t.Topic, p) {
		// Forwarded here from stale membership: this instance's copy of
		// the partition may be out of date.
		return Answer{}, fmt.Errorf("%w: %s partition %d moved", ErrNoOwner, t.Topic, p)
	}
	if r.tracker.Restoring(table, p) {
		return Answer{}, ErrRestoring
	}
	v, found, err := r.store.Get(table, p, []byte(key))
	if err != nil {
		return Answer{}, err
	}
	if !found {
		return Answer{}, fmt.Errorf("%w: %s/%s", ErrNotFound, table, key)
	}
	return Answer{Table: table, Key: key, Value: v, Partition: p, ServedBy: r.self}, nil
}

// Owns reports whether this instance owns key's partition of table now,
// from what it knows locally (no request to the cluster).
func (r *Router) Owns(table, key string) bool {
	t, ok := r.tables[table]
	return ok && r.tracker.Owns(t.Group, t.Topic, stream.PartitionFor([]byte(key), t.Partitions))
}

// Owner returns the URL of the instance owning key's partition of table,
// and whether that is this instance.
func (r *Router) Owner(ctx context.Context, table, key string) (string, bool, error) {
	t, ok := r.tables[table]
	if !ok {
		return "", false, fmt.Errorf("%w %q", ErrUnknownTable, table)
	}
	p := stream.PartitionFor([]byte(key), t.Partitions)
	if r.tracker.Owns(t.Group, t.Topic, p) {
		return r.self, true, nil
	}
	for attempt := 0; attempt < 2; attempt++ {
		ms, err := r.groupMembers(ctx, t.Group, attempt > 0)
		if err != nil {
			return "", false, err
		}
		for _, m := range ms {
			for _, q := range m.parts[t.Topic] {
				if q == p && m.url != "" {
					return m.url, m.url == r.self, nil
				}
			}
		}
	}
	return "", false, fmt.Errorf("%w: %s partition %d", ErrNoOwner, t.Topic, p)
}

// Forward asks owner for the query in path (with ?local=1 added, so the
// owner does not forward again) and copies the answer to w.
func (r *Router) Forward(ctx context.Context, w http.ResponseWriter, owner, path string, auth string) error {
	u, err := url.Parse(owner + path)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("local", "1")
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("query: forward to %s: %w", owner, err)
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Retry-After"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.Header().Set("X-Forwarded-To", owner)
	w.WriteHeader(resp.StatusCode)
	_, err = io.Copy(w, resp.Body)
	return err
}

// groupMembers returns group's members with their URLs and assignments.
// Unless fresh is set, a cached answer up to maxStale old serves, and one
// over memberTTL old is refreshed in the background meanwhile, so that a
// query does not wait for the broker to describe the group.
func (r *Router) groupMembers(ctx context.Context, group string, fresh bool) ([]member, error) {
	r.mu.Lock()
	c, ok := r.members[group]
	age := time.Since(c.at)
	usable := ok && !fresh && age < maxStale
	if usable && age >= memberTTL && !c.refreshing {
		c.refreshing = true
		r.members[group] = c
		go func() {
			if _, err := r.describeGroup(group); err != nil {
				r.mu.Lock()
				c := r.members[group]
				c.refreshing = false
				r.members[group] = c
				r.mu.Unlock()
			}
		}()
	}
	r.mu.Unlock()
	if usable {
		return c.members, nil
	}
	_ = ctx
	return r.describeGroup(group)
}

// memberTTL is how old the cached members of a group may get before a
// query refreshes them in the background; maxStale, before it waits for
// the refresh.
const (
	memberTTL = time.Second
	maxStale  = 10 * time.Second
)

// describeGroup asks the broker for group's members and caches them.
func (r *Router) describeGroup(group string) ([]member, error) {
	admin, err := r.admin()
	if err != nil {
		return nil, err
	}
	descs, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil {
		return nil, fmt.Errorf("query: describe group %s: %w", group, err)
	}
	var ms []member
	for _, d := range descs {
		for _, md := range d.Members {
			m := member{parts: map[string][]int32{}}
			if meta, err := md.GetMemberMetadata(); err == nil && meta != nil {
				m.url = strings.TrimRight(string(meta.UserData), "/")
			}
			if a, err := md.GetMemberAssignment(); err == nil && a != nil {
				m.parts = a.Topics
			}
			ms = append(ms, m)
		}
	}
	r.mu.Lock()
	r.members[group] = memberCache{at: time.Now(), members: ms}
	r.mu.Unlock()
	return ms, nil
}

// Entry is one listed key and value.
type Entry struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

// ListLocal lists up to limit entries of table whose keys start with
// prefix and sort after after, from the partitions this instance owns.
func (r *Router) ListLocal(table, prefix, after string, limit int) ([]Entry, error) {
	t, ok := r.tables[table]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownTable, table)
	}
	var out []Entry
	for _, p := range r.tracker.Owned(t.Group, t.Topic) {
		from := []byte(nil)
		if after != "" {
			from = append([]byte(after), 0)
		}
		es, err := r.store.Scan(table, p, []byte(prefix), from, limit)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			out = append(out, Entry{Key: string(e.Key), Value: e.Value})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Peers returns the URLs of the other instances consuming table's topic.
func (r *Router) Peers(ctx context.Context, table string) ([]string, error) {
	t, ok := r.tables[table]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownTable, table)
	}
	ms, err := r.groupMembers(ctx, t.Group, false)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range ms {
		if m.url != "" && m.url != r.self {
			out = append(out, m.url)
		}
	}
	return out, nil
}
