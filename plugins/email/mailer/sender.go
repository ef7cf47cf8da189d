package mailer

import "context"

// sender delivers rendered messages: over SMTP or into the outbox folder.
type sender interface {
	// send delivers msgs in order. After each message it calls done with
	// the message's position in msgs and "" when the message was
	// delivered, or the reason it was refused for good (the recipient
	// does not exist, say). An error from done stops send, which returns
	// it. Otherwise send returns an error when it cannot go on (the
	// server is down, the connection broke): the messages from the one
	// it was at onwards were not delivered, or not known to be. Errors
	// that will pass by themselves wrap sdk.ErrUnavailable.
	send(ctx context.Context, msgs []*message, done func(i int, refused string) error) error
	// close releases what the sender holds.
	close() error
	// String describes where messages go, for logs.
	String() string
}
