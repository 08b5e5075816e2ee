package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// problemLines loads file and returns its problems one per line, failing
// the test if it loads cleanly or fails with something other than Errors.
func problemLines(t testing.TB, file string) []string {
	t.Helper()
	_, err := LoadFile(file)
	if err == nil {
		t.Fatalf("LoadFile(%s) succeeded, want problems", file)
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("LoadFile(%s) error %T %v, want config.Errors", file, err, err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("LoadFile(%s) error does not match ErrInvalid", file)
	}
	return strings.Split(err.Error(), "\n")
}

func assertLines(t testing.TB, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

const durationHint = `: want a Go duration such as "250ms", "10s" or "24h"`

func TestLoadFileProblems(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"bad_duration.yaml", []string{
			`4: timeout: invalid duration "10 seconds"` + durationHint,
			`5: max_age: invalid duration "3d"` + durationHint,
			`7: ttl: invalid duration "24"` + durationHint,
		}},
		{"unknown_key.yaml", []string{
			`2: unknown key "lisen" (did you mean "listen"?)`,
			`4: unknown key "max_body" in ingest (did you mean "max_body_bytes"?)`,
			`6: unknown key "colour"`,
		}},
		{"misspelt_key.yaml", []string{
			`4: unknown key "retyr" in destinations (did you mean "retry"?)`,
			`9: unknown key "max_atempts" in retry (did you mean "max_attempts"?)`,
		}},
		{"bad_portal.yaml", []string{
			`11: portal "acme": unknown destination "acme-crn"`,
			`12: duplicate portal "acme" (first defined at line 9)`,
			`13: portal "acme": token must be at least 16 bytes, got 5`,
			`16: portal "globex": token is the same as portal "acme"'s`,
			`19: portal "globex": destination "globex" is listed twice`,
			`21: portal "initech": token must differ from admin.token`,
			`22: portal "initech": destinations must name at least one destination`,
			`24: portal "hooli": token must differ from agent "office"'s`,
		}},
		{"unknown_destination.yaml", []string{
			`9: route 3: unknown destination "acme-crn"`,
		}},
		{"duplicate_destination.yaml", []string{
			`9: duplicate destination "acme-crm" (first defined at line 5)`,
		}},
		{"bad_url.yaml", []string{
			`2: destination "no-url": url is required`,
			`4: destination "relative": url "/calls" is not an absolute http:// or https:// URL`,
			`6: destination "ftp": url "ftp://xxxxx:xxxxx@files.example/calls" is not an absolute http:// or https:// URL`,
			`8: destination "broken": url is not a valid URL: missing ']' in host`,
			`12: destination "ftp-token": url "ftp://files.example/calls?token=xxxxx" is not an absolute http:// or https:// URL`,
		}},
		{"redis_url_password.yaml", []string{
			`4: store.redis.url: not a valid URL: invalid port "xxxxx" after host`,
		}},
		{"redis_url_option.yaml", []string{
			`3: store.redis.url: "redis://:xxxxx@127.0.0.1:6379/0?token=xxxxx": redis: unexpected option: token`,
		}},
		{"bad_signing_secret.yaml", []string{
			`4: destination "acme-crm": signing_secret: secret 1: whsec_ value is not base64`,
			`7: destination "rotating": signing_secret: secret 2: whsec_ value is not base64`,
		}},
		{"short_agent_token.yaml", []string{
			`3: agent "office-1": token must be at least 16 bytes (it is 1); use a long random one, e.g. openssl rand -hex 32`,
			`5: agent "office-2": token must be at least 16 bytes (it is 15); use a long random one, e.g. openssl rand -hex 32`,
		}},
		{"open_admin.yaml", []string{
			`2: admin.listen "0.0.0.0:9090" is reachable from other hosts and admin.token is empty: set admin.token (whoever reaches the admin API can replay and delete deliveries), or listen on a loopback address`,
		}},
		{"portal_no_admin_token.yaml", []string{
			`4: portals need admin.token: without it every request, a portal client's without its token included, sees and does everything`,
		}},
		{"pprof_no_admin_token.yaml", []string{
			`3: admin.pprof needs admin.token: profiles show the process's memory, secrets and bodies included`,
		}},
		{"metrics_auth_no_admin_token.yaml", []string{
			`3: admin.metrics_auth needs admin.token: it is the token /metrics then asks for`,
		}},
		{"bad_status.yaml", []string{
			`6: destination "acme-crm": success_status 99 is not between 100 and 599`,
			`7: destination "acme-crm": success_status 600 is not between 100 and 599`,
		}},
		{"bad_response_status.yaml", []string{
			`2: ingest.response_status must be 200 or 202, got 201`,
		}},
		{"both_stores.yaml", []string{
			`1: store: set only one of embedded or redis, not both`,
		}},
		{"no_store.yaml", []string{
			`2: store: set one of embedded or redis`,
		}},
		{"embedded_no_path.yaml", []string{
			`2: store.embedded.path is required`,
		}},
		{"embedded_bad_retention.yaml", []string{
			`4: store.embedded.retention must be positive, got -1h0m0s`,
		}},
		{"bad_redis_url.yaml", []string{
			`3: store.redis.url: "http://:xxxxx@127.0.0.1:6379/0" must start with redis:// or rediss://`,
			`4: store.redis.retention must be positive, got -1h0m0s`,
		}},
		{"bad_cluster_db.yaml", []string{
			`3: store.redis.url: "redis://:xxxxx@127.0.0.1:7000/3?addr=xxxxx": a Redis Cluster has only database 0`,
		}},
		{"bad_cluster_addr.yaml", []string{
			`3: store.redis.url: "redis://127.0.0.1:7000?addr=xxxxx": addr parameter 1 is not host:port`,
		}},
		{"seeds_without_cluster.yaml", []string{
			`3: store.redis.url: "redis://127.0.0.1:7000?addr=xxxxx": addr parameters name cluster seeds; set store.redis.cluster: true`,
		}},
		{"duplicate_key.yaml", []string{
			`4: mapping key "listen" already defined at line 1`,
		}},
		{"duplicate_agent.yaml", []string{
			`4: duplicate agent "office-1" (first defined at line 2)`,
			`6: agent "office-2": token is required`,
		}},
		{"unknown_agent.yaml", []string{
			`6: destination "office": unknown agent "office-9"`,
		}},
		{"bad_name.yaml", []string{
			`2: destination 1: name is required`,
			`3: destination 2: name "acme crm" must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$`,
			`5: destination 3: name "-acme" must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$`,
		}},
		{"bad_unmatched.yaml", []string{
			`2: ingest.unmatched must be "park" or "reject", got "drop"`,
		}},
		{"bad_max_body.yaml", []string{
			`2: ingest.max_body_bytes must be positive, got -1`,
		}},
		{"bad_route.yaml", []string{
			`2: route 1: webhook_id is required`,
			`3: route 2: to must name at least one destination`,
			`5: route 3: destination "acme-crm" is listed twice`,
			`5: route 3: to entry 3 is empty`,
		}},
		{"bad_retry.yaml", []string{
			`5: destination "acme-crm": retry.max_attempts must be at least 1, got -1`,
			`6: destination "acme-crm": retry.initial_interval 2h0m0s is greater than retry.max_interval 1h0m0s`,
		}},
		{"bad_schedule.yaml", []string{
			`5: destination "acme-crm": retry.schedule entry 3 must not be negative, got -5m0s`,
			`6: destination "acme-crm": retry.initial_interval has no effect with retry.schedule; remove one of them`,
			`7: destination "acme-crm": retry.max_interval has no effect with retry.schedule; remove one of them`,
		}},
		{"bad_circuit.yaml", []string{
			`5: destination "acme-crm": circuit.failures must be positive, got -1 (circuit.disabled: true turns the breaker off)`,
			`6: destination "acme-crm": circuit.cooldown must be positive, got -5s`,
		}},
		{"bad_tls.yaml", []string{
			`4: destination "missing": tls.ca_file: open testdata/no-such-ca.pem: no such file or directory`,
			`8: destination "not-pem": tls.ca_file "testdata/not_a_cert.pem" holds no PEM certificate`,
			`11: destination "both": tls.ca_file has no effect with tls.insecure_skip_verify; remove one of them`,
			`15: destination "agent-side": tls.ca_file: open /only/on/the/relay/host.pem: no such file or directory`,
		}},
		{"agent_tls.yaml", []string{
			`8: destination "ca-file": tls.ca_file: open /only/on/the/agent/host.pem: no such file or directory`,
			`21: destination "also-unknown-agent": unknown agent "office-9"`,
		}},
		{"negative.yaml", []string{
			`4: destination "acme-crm": timeout must be positive, got -1s`,
			`5: destination "acme-crm": concurrency must not be negative, got -2`,
			`6: destination "acme-crm": rate_limit must not be negative, got -0.5`,
		}},
		{"bad_dedupe.yaml", []string{
			`2: dedupe.fields: entry 2 is empty`,
			`2: dedupe.fields: "mid" is listed twice`,
			`3: dedupe.ttl must be positive, got -1h0m0s`,
		}},
		{"bad_listen.yaml", []string{
			`1: listen: "8080" is not host:port: missing port in address`,
			`3: admin.listen: "localhost:http" is not host:port: port "http" is not a number from 0 to 65535`,
		}},
		{"bad_header.yaml", []string{
			`5: destination "acme-crm": header name "X Api Key" is not a valid HTTP header name`,
		}},
		{"bad_jq.yaml", []string{
			`3: route 1: filter: jq: unexpected EOF at column 23`,
			`6: route 2: filter: jq: function not defined: nosuch/1`,
			`12: destination "crm": transform.body: jq: unexpected EOF at column 11`,
			`13: destination "crm": transform.format must be "json" or "form", got "xml"`,
			`14: destination "crm": transform.content_type contains a line break or NUL`,
			`16: destination "crm": transform.headers.X-Call-Id: jq: unexpected EOF at column 6`,
			`17: destination "crm": transform.headers: X-Relay-Attempt is set by Relay and cannot be replaced`,
			`18: destination "crm": transform.headers: set Content-Type with transform.content_type`,
			`21: destination "empty": transform sets nothing; give body, format, content_type or headers, or remove it`,
		}},
		{"wrong_type.yaml", []string{
			`3: to: expected a list, got "acme-crm"`,
			`6: url: expected a single value, got a list`,
			`7: concurrency: expected an integer, got "four"`,
			`8: headers: expected a mapping, got a list`,
		}},
		{"syntax_error.yaml", []string{
			// yaml.v3 places this error on the line before the bad indent.
			`3: invalid YAML: did not find expected key`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = path + ":" + w
			}
			assertLines(t, problemLines(t, path), want)
		})
	}
}

// TestLoadReportsEveryProblem checks that decoding errors and validation
// problems from all parts of a file come back together, in line order.
func TestLoadReportsEveryProblem(t *testing.T) {
	path := filepath.Join("testdata", "many_problems.yaml")
	assertLines(t, problemLines(t, path), []string{
		path + `:3: ingest.response_status must be 200 or 202, got 500`,
		path + `:4: unknown key "unmatchd" in ingest (did you mean "unmatched"?)`,
		path + `:5: store: set only one of embedded or redis, not both`,
		path + `:10: route 1: unknown destination "acme-archive"`,
		path + `:14: timeout: invalid duration "soon"` + durationHint,
		path + `:15: destination "acme-crm": success_status 1000 is not between 100 and 599`,
		path + `:16: duplicate destination "acme-crm" (first defined at line 12)`,
		path + `:17: destination "acme-crm": url "mailto:ops@acme.example" is not an absolute http:// or https:// URL`,
	})
}

func TestLoadInline(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"route to unknown destination", "routes:\n- webhook_id: '1'\n  to: [x]\n",
			[]string{`<config>:3: route 1: unknown destination "x"`}},
		{"not a mapping", "- listen\n",
			[]string{`<config>:1: config: expected a mapping, got a list`}},
		{"second document", "listen: ':1'\n---\nlisten: ':2'\n",
			[]string{`<config>:2: a second YAML document ("---") is not allowed: write one config per file`}},
		{"tab indent", "admin:\n\tlisten: ':1'\n",
			[]string{`<config>:2: invalid YAML: a tab indents this line; YAML indents with spaces only`}},
		{"tab indent in a list", "routes:\n  - webhook_id: a\n\t to: [x]\n",
			[]string{`<config>:3: invalid YAML: a tab indents this line; YAML indents with spaces only`}},
		{"empty file", "", []string{`<config>: the file is empty: start from relay.example.yaml, which documents every key`}},
		{"only comments", "# nothing here\n", []string{`<config>: the file is empty: start from relay.example.yaml, which documents every key`}},
		{"null document", "~\n", []string{`<config>: the file is empty: start from relay.example.yaml, which documents every key`}},
		{"url without scheme", "destinations: [{name: a, url: '127.0.0.1:38917/x'}]\n",
			[]string{`<config>:1: destination "a": url "127.0.0.1:38917/x" has no scheme: write http://127.0.0.1:38917/x or https://127.0.0.1:38917/x`}},
		{"bad log keys", "log: {level: loud, format: xml, sample: 2}\n", []string{
			`<config>:1: log.level must be debug, info, warn or error, got "loud"`,
			`<config>:1: log.format must be text or json, got "xml"`,
			`<config>:1: log.sample must be between 0 (no per-callback lines) and 1 (all), got 2`}},
		{"unknown anchor", "listen: ':1'\nadmin: *base\n",
			[]string{`<config>:2: invalid YAML: unknown anchor 'base' referenced`}},
		{"duplicate header", "destinations:\n- name: a\n  url: http://x\n  headers:\n    A: 1\n    A: 2\n",
			[]string{`<config>:6: mapping key "A" already defined at line 5`}},
		{"alias cycle", "destinations: &d\n- name: a\n  url: http://x\n  success_status: *d\n",
			[]string{`<config>:4: success_status: alias refers to a value that contains it`}},
		{"merge key non-mapping", "admin:\n  <<: 3\n",
			[]string{`<config>:2: <<: expected a mapping or a list of mappings to merge, got "3"`}},
		{"anchor on an unknown key", "defaults: &d {timeout: 5s}\n",
			[]string{`<config>:1: unknown key "defaults"`}},
		{"merge cycle", "admin: &a\n  listen: '127.0.0.1:1'\n  <<: *a\n",
			[]string{`<config>:3: <<: alias refers to a mapping that contains it`}},
		{"unknown key in a merged mapping", "x: &x {listen: ':1'}\ningest:\n  <<: *x\n",
			[]string{`<config>:1: unknown key "x"`, `<config>:1: unknown key "listen" in ingest`}},
		{"merge list item not a mapping", "admin:\n  <<: [{listen: ':1'}, 3]\n",
			[]string{`<config>:2: <<: expected a mapping or a list of mappings to merge, got "3"`}},
		{"float for an integer", "destinations: [{name: a, url: 'http://x', concurrency: 4.5}]\n",
			[]string{`<config>:1: concurrency: expected an integer, got "4.5"`}},
		{"yes for a bool", "destinations: [{name: a, url: 'http://x', follow_redirects: yes}]\n",
			[]string{`<config>:1: follow_redirects: expected true or false, got "yes"`}},
		{"integer out of range", "destinations: [{name: a, url: 'http://x', concurrency: '99999999999999999999'}]\n",
			[]string{`<config>:1: concurrency: expected an integer, got "99999999999999999999"`}},
		{"mapping as a key", "admin:\n  {listen: x}: 1\n",
			[]string{`<config>:2: mapping keys must be single values, got a mapping`}},
		{"duplicate key in a destination, reported before validation",
			"routes: [{webhook_id: '1', to: [a]}]\ndestinations:\n- name: a\n  url: http://x\n  url: http://y\n  timeout: soon\n- name: b\n  url: http://x\n",
			[]string{`<config>:5: mapping key "url" already defined at line 4`,
				`<config>:6: timeout: invalid duration "soon"` + durationHint}},
		{"nan rate limit", "destinations:\n- name: a\n  url: http://x\n  rate_limit: .nan\n",
			[]string{`<config>:4: destination "a": rate_limit must be a finite number`}},
		{"header value with newline", "destinations:\n- name: a\n  url: http://x\n  headers: {A: \"x\\ny\"}\n",
			[]string{`<config>:4: destination "a": header "A" value contains a line break or NUL`}},
		{"same listeners", "listen: 127.0.0.1:80\nadmin: {listen: 127.0.0.1:80}\n",
			[]string{`<config>:2: admin.listen must differ from listen (both "127.0.0.1:80")`}},
		{"negative lease margin", "delivery:\n  poll_interval: 1s\n  lease_margin: -2s\n",
			[]string{`<config>:3: delivery.lease_margin must be positive, got -2s`}},
		{"first cooldown past the cooldown", "destinations:\n- name: a\n  url: http://x\n  circuit: {cooldown: 1m, first_cooldown: 2m}\n",
			[]string{`<config>:4: destination "a": circuit.first_cooldown must be positive and at most circuit.cooldown (1m0s), got 2m0s`}},
		{"lease too short", "delivery:\n  poll_interval: 1s\n  lease: 100ms\n",
			[]string{`<config>:3: delivery.lease must be at least 300ms, got 100ms`}},
		{"negative write timeout", "store:\n  embedded: {path: ./d}\n  write_timeout: -1s\n",
			[]string{`<config>:3: store.write_timeout must be positive, got -1s`}},
		{"tls ca_file of an agent destination is read on the relay",
			"agents: [{name: a1, token: t-0123456789abcdef}]\ndestinations:\n- name: a\n  agent: a1\n  url: http://x\n  tls: {ca_file: /no/such/ca.pem}\n",
			[]string{`<config>:6: destination "a": tls.ca_file: open /no/such/ca.pem: no such file or directory`}},
		{"empty match field", "routes:\n- webhook_id: '1'\n  match: {'': x}\n  to: [a]\ndestinations: [{name: a, url: 'http://x'}]\n",
			[]string{`<config>:3: route 1: match has an empty field name`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]byte(tt.yaml), "")
			if err == nil {
				t.Fatalf("Load succeeded, want %q", tt.want)
			}
			assertLines(t, strings.Split(err.Error(), "\n"), tt.want)
		})
	}
}

func TestLoadValid(t *testing.T) {
	tests := []struct {
		name, yaml  string
		concurrency int
	}{
		{"test listeners on port 0", "listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\n", 0},
		{"unquoted numeric webhook_id", "routes: [{webhook_id: 1001, to: [a]}]\ndestinations: [{name: a, url: 'http://x'}]\n", 0},
		{"quoted integers", "destinations: [{name: a, url: 'http://x', concurrency: '8', rate_limit: '2.5'}]\n", 8},
		{"quoted integer with a leading zero", "destinations: [{name: a, url: 'http://x', concurrency: ' 08'}]\n", 8},
		{"tls on an agent destination", "agents: [{name: a1, token: t-0123456789abcdef}]\ndestinations:\n" +
			"- {name: a, agent: a1, url: 'https://x', tls: {ca_file: testdata/ca.pem}}\n" +
			"- {name: b, agent: a1, url: 'https://y', tls: {insecure_skip_verify: true}}\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load([]byte(tt.yaml), "")
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.Listen == "" || c.Store.Embedded == nil {
				t.Errorf("defaults not applied: %+v", c)
			}
			if tt.concurrency != 0 && c.Destinations[0].Concurrency != tt.concurrency {
				t.Errorf("concurrency = %d, want %d", c.Destinations[0].Concurrency, tt.concurrency)
			}
		})
	}
}

func TestLoadMergeKeys(t *testing.T) {
	text := `destinations:
  - &base
    name: a
    url: "http://127.0.0.1:9999/a"
    timeout: 5s
    concurrency: 2
  - <<: *base
    name: b
    concurrency: 7
`
	c, err := Load([]byte(text), "merge.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	b, ok := c.Destination("b")
	if !ok {
		t.Fatal("destination b missing")
	}
	if b.URL != "http://127.0.0.1:9999/a" || b.Timeout.D().String() != "5s" || b.Concurrency != 7 {
		t.Errorf("merged destination b = %+v, want url of a, timeout 5s, concurrency 7", b)
	}
}

func TestLoadSetsFileAndLines(t *testing.T) {
	text := "routes:\n  - webhook_id: '1'\n    to: [a]\n\n  - webhook_id: '2'\n    to: [a]\ndestinations:\n  - name: a\n    url: http://x\n"
	c, err := Load([]byte(text), "relay.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.File != "relay.yaml" {
		t.Errorf("File = %q, want relay.yaml", c.File)
	}
	if c.Routes[0].Line != 2 || c.Routes[1].Line != 5 {
		t.Errorf("route lines = %d, %d, want 2, 5", c.Routes[0].Line, c.Routes[1].Line)
	}
	if c.Destinations[0].Line != 8 {
		t.Errorf("destination line = %d, want 8", c.Destinations[0].Line)
	}
}

func TestLoadFileMissing(t *testing.T) {
	_, err := LoadFile(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadFile error = %v, want os.ErrNotExist", err)
	}
	if errors.Is(err, ErrInvalid) {
		t.Error("a missing file must not match ErrInvalid")
	}
}

func TestExampleLoads(t *testing.T) {
	// Variables the example reads must not leak in from the test's environment.
	for _, v := range []string{"RELAY_ADMIN_TOKEN", "ACME_KEY", "ACME_WHSEC", "RELAY_REDIS_URL", "OFFICE_1_TOKEN"} {
		t.Setenv(v, "")
	}
	c, err := LoadFile("../relay.example.yaml")
	if err != nil {
		t.Fatalf("LoadFile: %v", err)
	}
	if c.Listen != "127.0.0.1:8080" || c.Admin.Listen != "127.0.0.1:9090" || c.Admin.Token != "" {
		t.Errorf("listeners = %q, %q token %q", c.Listen, c.Admin.Listen, c.Admin.Token)
	}
	if c.Store.Embedded == nil || c.Store.Embedded.Path != "./relay-data" || c.Store.Redis != nil {
		t.Errorf("store = %+v, want embedded ./relay-data only", c.Store)
	}
	assertLines(t, c.RouteSummaries(), []string{
		"1001 -> acme-crm, acme-archive",
		"1002 [status=ANSWER] -> acme-crm",
	})
	crm, ok := c.Destination("acme-crm")
	if !ok || crm.Headers["X-Api-Key"] != "demo-key" || crm.SigningSecret != "" {
		t.Errorf("acme-crm = %+v, want X-Api-Key demo-key and no signing secret", crm)
	}
	for _, d := range c.Destinations {
		if !strings.HasPrefix(d.URL, "http://127.0.0.1:9999/") {
			t.Errorf("destination %s url %q, want the local sink", d.Name, d.URL)
		}
	}
}
