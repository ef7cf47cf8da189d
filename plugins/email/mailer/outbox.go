package mailer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/billing-engine/billing/engine/sdk"
)

// outbox writes each message to <dir>/<kind>-<ref>.eml instead of sending
// it. The name depends only on the kind and the ref id, and a file is
// written whole (a temporary file, fsync, rename, fsync of the folder) or
// not at all, so each email is there exactly once however often it is
// written. It is safe for concurrent use.
type outbox struct {
	dir string
}

func newOutbox(dir string) (*outbox, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, settingOutboxDir, err)
	}
	return &outbox{dir: dir}, nil
}

func (o *outbox) String() string { return "outbox " + o.dir }

// outboxName returns the file name of the email of kind about refID:
// refID with every character other than letters, digits, '.', '_' and
// '-' replaced by '_' and, when any was, a short hash of refID added, so
// that different ids never share a file.
func outboxName(kind, refID string) string {
	var b strings.Builder
	changed := false
	for i := 0; i < len(refID); i++ {
		c := refID[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('_')
		changed = true
	}
	name := kind + "-" + b.String()
	if changed {
		sum := sha256.Sum256([]byte(refID))
		name += "-" + hex.EncodeToString(sum[:6])
	}
	return name + ".eml"
}

func (o *outbox) send(ctx context.Context, msgs []*message, done func(int, string) error) error {
	for i, m := range msgs {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("email: outbox: %w", err)
		}
		if err := o.write(outboxName(m.kind, m.refID), m.data); err != nil {
			// A full or failing disk is expected to be dealt with:
			// the batch waits for it rather than losing its emails.
			return sdk.Unavailable(fmt.Errorf("email: outbox: %w", err))
		}
		if err := done(i, ""); err != nil {
			return err
		}
	}
	return nil
}

// write puts data in the file name, atomically; a file already there (an
// email written before a crash, and not recorded) is kept.
func (o *outbox) write(name string, data []byte) error {
	final := filepath.Join(o.dir, name)
	if _, err := os.Stat(final); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.CreateTemp(o.dir, ".tmp-"+name+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o640)
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(o.dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (o *outbox) close() error { return nil }
