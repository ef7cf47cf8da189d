package stream

import (
	"crypto/sha256"
	"crypto/sha512"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"
)

// scramClient adapts xdg-go/scram, the SCRAM implementation sarama's own
// examples use, to sarama.SCRAMClient.
type scramClient struct {
	gen  scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func newSCRAM256() sarama.SCRAMClient { return &scramClient{gen: sha256.New} }
func newSCRAM512() sarama.SCRAMClient { return &scramClient{gen: sha512.New} }

// Begin starts a conversation for user and password.
func (c *scramClient) Begin(user, password, authzID string) error {
	client, err := c.gen.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	c.conv = client.NewConversation()
	return nil
}

// Step answers one server challenge.
func (c *scramClient) Step(challenge string) (string, error) { return c.conv.Step(challenge) }

// Done reports whether the conversation is complete.
func (c *scramClient) Done() bool { return c.conv.Done() }
