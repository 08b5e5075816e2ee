package config

import (
	"slices"
	"strings"
	"testing"
)

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"SET": "value", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		name, in, want string
	}{
		{"set", "a: ${SET}", "a: value"},
		{"unset", "a: '${UNSET}'", "a: ''"},
		{"default when unset", "a: ${UNSET:-dflt}", "a: dflt"},
		{"default when empty", "a: ${EMPTY:-dflt}", "a: dflt"},
		{"default ignored when set", "a: ${SET:-dflt}", "a: value"},
		{"empty default", "a: '${UNSET:-}'", "a: ''"},
		{"default with colon and slashes", "u: ${UNSET:-redis://h:6379/0}", "u: redis://h:6379/0"},
		{"dollar dollar", "p: $$5 and $${SET}", "p: $5 and ${SET}"},
		{"lone dollar kept", "p: 5$ $SET $", "p: 5$ $SET $"},
		{"several on a line", "${SET}-${UNSET:-x}-${SET}", "value-x-value"},
		{"comments too", "# ${SET}\n", "# value\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, errs := expandEnv([]byte(tt.in), lookup)
			if len(errs) > 0 {
				t.Fatalf("expandEnv(%q) errors: %v", tt.in, errs)
			}
			if string(got) != tt.want {
				t.Errorf("expandEnv(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestExpandEnvErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"unterminated", "a: 1\nb: ${X\nc: }\n",
			[]string{`env.yaml:2: unterminated "${": write "}" on the same line, or "$$" for a literal "$"`}},
		{"bad name", "a: ${X-y}\nb: ${}\n", []string{
			`env.yaml:1: invalid variable reference "${X-y}": want ${NAME} or ${NAME:-default}`,
			`env.yaml:2: invalid variable reference "${}": want ${NAME} or ${NAME:-default}`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]byte(tt.in), "env.yaml")
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			assertLines(t, strings.Split(err.Error(), "\n"), tt.want)
		})
	}
}

func TestLoadExpandsEnv(t *testing.T) {
	t.Setenv("RELAY_TEST_TOKEN", "s3cret")
	t.Setenv("RELAY_TEST_EMPTY", "")
	t.Setenv("RELAY_TEST_PORT", "8181")
	text := `listen: "127.0.0.1:${RELAY_TEST_PORT}"
admin:
  token: "${RELAY_TEST_TOKEN}"
destinations:
  - name: a
    url: "http://127.0.0.1:9999/a?price=$$5"
    headers:
      X-Unset: "${RELAY_TEST_UNSET_VARIABLE}"
      X-Default: "${RELAY_TEST_UNSET_VARIABLE:-fallback}"
      X-Empty-Default: "${RELAY_TEST_EMPTY:-fallback}"
    signing_secret: "${RELAY_TEST_UNSET_VARIABLE:-}"
    concurrency: ${RELAY_TEST_UNSET_VARIABLE:-3}
`
	c, err := Load([]byte(text), "")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	d := c.Destinations[0]
	checks := []struct{ name, got, want string }{
		{"listen", c.Listen, "127.0.0.1:8181"},
		{"token", c.Admin.Token, "s3cret"},
		{"url with $$", d.URL, "http://127.0.0.1:9999/a?price=$5"},
		{"unset", d.Headers["X-Unset"], ""},
		{"default", d.Headers["X-Default"], "fallback"},
		{"empty takes default", d.Headers["X-Empty-Default"], "fallback"},
		{"empty default", d.SigningSecret, ""},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if d.Concurrency != 3 {
		t.Errorf("concurrency = %d, want 3", d.Concurrency)
	}
}

// TestLoadEnvNewlineKeepsLines checks that a value with a newline does not
// shift the lines of later problems.
func TestLoadEnvNewlineKeepsLines(t *testing.T) {
	t.Setenv("RELAY_TEST_MULTILINE", "one\n\n  two")
	text := "admin:\n  token: \"${RELAY_TEST_MULTILINE}\"\n\nlisn: x\n"
	_, err := Load([]byte(text), "")
	if err == nil {
		t.Fatal("Load succeeded, want unknown key")
	}
	assertLines(t, strings.Split(err.Error(), "\n"), []string{
		`<config>:4: unknown key "lisn" (did you mean "listen"?)`,
	})
}

// An unset ${VAR} without a default is a warning, except under a secret key,
// where it would silently switch authentication off: there it is an error.
func TestUnsetVariables(t *testing.T) {
	env := map[string]string{"SET": "s3cret-s3cret-s3cret", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		name         string
		yaml         string
		wantErr      []string
		wantWarnings []string
	}{
		{"set and defaulted", "admin: {token: '${SET}'}\ndestinations: [{name: a, url: 'http://x/${PATHX:-p}', signing_secret: '${NOPE:-}'}]\n", nil, nil},
		{"set to empty", "admin: {token: '${EMPTY}'}\n", nil, nil},
		{"in comments", "# token: ${COMMENTED}\nlisten: ':1'  # or ${ALSO_COMMENTED}\n", nil, nil},
		{"unset in a url", "destinations:\n  - {name: a, url: 'http://x/${MISSPELT}'}\n", nil,
			[]string{`<config>:2: ${MISSPELT} is not set in the environment of this process; it expands to "" (write ${MISSPELT:-} to mean that)`}},
		{"unset admin token", "listen: ':1'\nadmin:\n  token: \"${RELAY_ADMN_TOKEN}\"\n", []string{
			`<config>:3: ${RELAY_ADMN_TOKEN} is not set in the environment of this process, and admin.token is a secret: set RELAY_ADMN_TOKEN, or write ${RELAY_ADMN_TOKEN:-} if admin.token may be empty`}, nil},
		{"unset signing secret and agent token", "agents: [{name: o, token: '${AGENT_T}'}]\ndestinations:\n  - name: a\n    url: http://x\n    signing_secret: ${WHSEC}\n", []string{
			`<config>:1: agent "o": token is required`,
			`<config>:5: ${WHSEC} is not set in the environment of this process, and destinations.0.signing_secret is a secret: set WHSEC, or write ${WHSEC:-} if destinations.0.signing_secret may be empty`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadWith([]byte(tt.yaml), "", Options{Lookup: lookup})
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if !slices.Equal(got, tt.wantErr) {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.wantErr, "\n"))
			}
			if err != nil {
				return
			}
			got = nil
			for _, w := range c.Warnings {
				got = append(got, w.Error())
			}
			if !slices.Equal(got, tt.wantWarnings) {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.wantWarnings, "\n"))
			}
		})
	}
}
