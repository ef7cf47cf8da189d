package pipeline

import "gopkg.in/yaml.v3"

// file decodes the top level of a pipeline file.
func (d *decoder) file(root *yaml.Node) {
	f := d.f
	d.object("", root, map[string]field{
		"version":        integer(d, &f.Version),
		"application_id": d.str(&f.ApplicationID),
		"data_dir":       d.str(&f.DataDir),
		"schemas":        d.str(&f.SchemasDir),
		"kafka":          d.section(nil, d.kafkaFields(&f.Kafka)),
		"http":           d.section(nil, d.httpFields(&f.HTTP)),
		"database":       d.section(nil, map[string]field{"dsn": d.str(&f.Database.DSN)}),
		"email":          d.section(nil, d.emailFields(&f.Email)),
		"topics":         d.topics,
		"plugins":        d.plugins,
		"pipelines":      d.pipelines,
	})
}

// section returns a field decoding a nested mapping; pos, when not nil,
// gets the position of the section's key.
func (d *decoder) section(pos *Pos, fields map[string]field) field {
	return func(path string, k, v *yaml.Node) {
		d.set(path, k)
		if pos != nil {
			*pos = posOf(k)
		}
		d.object(path, v, fields)
	}
}

func (d *decoder) kafkaFields(k *Kafka) map[string]field {
	return map[string]field{
		"brokers":            d.stringList(&k.Brokers, true),
		"embedded_listen":    d.str(&k.EmbeddedListen),
		"exactly_once":       d.boolean(&k.ExactlyOnce),
		"create_topics":      d.boolean(&k.CreateTopics),
		"partitions":         integer(d, &k.Partitions),
		"replication_factor": integer(d, &k.ReplicationFactor),
		"version":            d.str(&k.Version),
		"client_id":          d.str(&k.ClientID),
		"compression":        d.str(&k.Compression),
		"sasl": d.section(nil, map[string]field{
			"mechanism": d.str(&k.SASL.Mechanism),
			"user":      d.str(&k.SASL.User),
			"password":  d.str(&k.SASL.Password),
		}),
		"tls": d.section(nil, map[string]field{
			"enabled":              d.boolean(&k.TLS.Enabled),
			"ca_file":              d.str(&k.TLS.CAFile),
			"cert_file":            d.str(&k.TLS.CertFile),
			"key_file":             d.str(&k.TLS.KeyFile),
			"insecure_skip_verify": d.boolean(&k.TLS.InsecureSkipVerify),
			"server_name":          d.str(&k.TLS.ServerName),
		}),
	}
}

func (d *decoder) httpFields(h *HTTP) map[string]field {
	return map[string]field{
		"listen":         d.str(&h.Listen),
		"advertise":      d.str(&h.Advertise),
		"api_token":      d.str(&h.APIToken),
		"api_read_token": d.str(&h.APIReadToken),
	}
}

func (d *decoder) emailFields(e *Email) map[string]field {
	return map[string]field{
		"smtp_addr": d.str(&e.SMTPAddr),
		"from":      d.str(&e.From),
	}
}

// topics decodes the per-topic overrides, keyed by topic name.
func (d *decoder) topics(path string, k, v *yaml.Node) {
	d.set(path, k)
	d.each(path, v, func(name string, k, v *yaml.Node) {
		p := namePath(path, name)
		d.set(p, k)
		var t Topic
		d.object(p, v, map[string]field{
			"partitions": integer(d, &t.Partitions),
			"compact":    d.boolean(&t.Compact),
		})
		if d.f.Topics == nil {
			d.f.Topics = make(map[string]Topic)
		}
		d.f.Topics[name] = t
	})
}

// plugins decodes the plugin declarations, keyed by plugin name.
func (d *decoder) plugins(path string, k, v *yaml.Node) {
	d.set(path, k)
	d.each(path, v, func(name string, k, v *yaml.Node) {
		p := namePath(path, name)
		d.set(p, k)
		pl := Plugin{Name: name, Pos: posOf(k)}
		d.object(p, v, map[string]field{
			"command": d.str(&pl.Command),
			"args":    d.stringList(&pl.Args, false),
			"sha256":  d.str(&pl.SHA256),
			"timeout": d.duration(&pl.Timeout),
			"config":  d.anyMap(&pl.Config),
		})
		if d.f.Plugins == nil {
			d.f.Plugins = make(map[string]Plugin)
		}
		d.f.Plugins[name] = pl
	})
}
