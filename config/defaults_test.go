package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadDefaults(t *testing.T) {
	c, err := Load([]byte("destinations:\n  - name: a\n    url: http://127.0.0.1:9999/a\n"), "")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := &Config{
		Listen: "127.0.0.1:8080",
		Admin:  Admin{Listen: "127.0.0.1:9090"},
		Store:  Store{Embedded: &EmbeddedStore{Path: "./relay-data", Retention: Duration(72 * time.Hour)}, WriteTimeout: Duration(2 * time.Second)},
		Ingest: Ingest{MaxBodyBytes: 1048576, ResponseStatus: 202, Unmatched: "park",
			ParkedTTL: Duration(168 * time.Hour), MaxConcurrent: 1024, MaxInflightBytes: 64 << 20},
		Dedupe: Dedupe{Fields: []string{"mid"}, TTL: Duration(24 * time.Hour)},
		Delivery: Delivery{
			PollInterval: Duration(500 * time.Millisecond),
			LeaseMargin:  Duration(30 * time.Second),
			Lease:        Duration(15 * time.Second),
		},
		Destinations: []Destination{{
			Name:    "a",
			URL:     "http://127.0.0.1:9999/a",
			Timeout: Duration(10 * time.Second),
			Retry: Retry{
				MaxAttempts:     12,
				InitialInterval: Duration(time.Second),
				MaxInterval:     Duration(time.Hour),
				MaxAge:          Duration(72 * time.Hour),
			},
			Concurrency: 4,
			Circuit:     Circuit{Failures: 10, Cooldown: Duration(5 * time.Minute), FirstCooldown: Duration(5 * time.Second)},
			Line:        2,
		}},
		Log: Log{Level: "info", Format: "text", Sample: new(1.0)},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if d := c.Destinations[0]; d.SuccessStatus != nil || d.RateLimit != 0 {
		t.Errorf("success_status %v rate_limit %v, want empty (any 2xx) and 0", d.SuccessStatus, d.RateLimit)
	}
}

func TestLoadDefaultsRedis(t *testing.T) {
	c, err := Load([]byte("store:\n  redis: {url: \"redis://127.0.0.1:6379/0\"}\n"), "")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Store{Redis: &RedisStore{URL: "redis://127.0.0.1:6379/0", Prefix: "relay:", Retention: Duration(72 * time.Hour), Partitions: 1}, WriteTimeout: Duration(2 * time.Second)}
	if !reflect.DeepEqual(c.Store, want) {
		t.Errorf("store = %+v %+v, want %+v", c.Store, c.Store.Redis, want.Redis)
	}
}

func TestLoadRedisCluster(t *testing.T) {
	const url = "redis://127.0.0.1:7000?addr=127.0.0.1:7001&addr=127.0.0.1:7002"
	c, err := Load([]byte("store:\n  redis: {url: \""+url+"\", cluster: true}\n"), "")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Store{Redis: &RedisStore{URL: url, Prefix: "relay:", Retention: Duration(72 * time.Hour), Cluster: true,
		Partitions: DefaultRedisClusterPartitions}, WriteTimeout: Duration(DefaultWriteTimeout)}
	if !reflect.DeepEqual(c.Store, want) {
		t.Errorf("store = %+v %+v, want %+v", c.Store, c.Store.Redis, want.Redis)
	}
}

func TestRedisPartitions(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want int
		err  string
	}{
		{`{url: "redis://h:1", partitions: 4}`, 4, ""},
		{`{url: "redis://h:1", cluster: true, partitions: 1}`, 1, ""},
		{`{url: "redis://h:1", partitions: -1}`, 0, "store.redis.partitions must be from 1 to 1024, got -1"},
		{`{url: "redis://h:1", partitions: 2000}`, 0, "store.redis.partitions must be from 1 to 1024, got 2000"},
		{`{url: "redis://h:1", cluster: true, prefix: "{r}:"}`, 0, "holds a hash tag"},
		{`{url: "redis://h:1", cluster: true, prefix: "{r}:", partitions: 1}`, 1, ""},
		{`{url: "redis://h:1", prefix: "{r}:", partitions: 4}`, 4, ""},
	} {
		c, err := Load([]byte("store:\n  redis: "+tc.yaml+"\n"), "")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want %q", tc.yaml, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.yaml, err)
		} else if got := c.Store.Redis.Partitions; got != tc.want {
			t.Errorf("%s: partitions = %d, want %d", tc.yaml, got, tc.want)
		}
	}
}

func TestLoadEmbeddedRetention(t *testing.T) {
	c, err := Load([]byte("store:\n  embedded: {path: ./d, retention: 1h}\n"), "")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := c.Store.Embedded.Retention.D(); got != time.Hour {
		t.Errorf("retention = %v, want the 1h given", got)
	}
}

func TestLoadDedupeFields(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"absent", "dedupe: {ttl: 1h}\n", []string{"mid"}},
		{"null", "dedupe: {fields: }\n", []string{"mid"}},
		{"empty list disables", "dedupe: {fields: []}\n", []string{}},
		{"explicit", "dedupe: {fields: [mid, flow_id]}\n", []string{"mid", "flow_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load([]byte(tt.yaml), "")
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(c.Dedupe.Fields, tt.want) {
				t.Errorf("fields = %#v, want %#v", c.Dedupe.Fields, tt.want)
			}
		})
	}
}

func TestLoadKeepsExplicitValues(t *testing.T) {
	text := `listen: ":8000"
admin: {listen: ":9000", token: t}
store: {redis: {url: "rediss://h:6380/1", prefix: "x:", retention: 1h}}
ingest: {max_body_bytes: 10, response_status: 200, unmatched: reject}
dedupe: {ttl: 1m}
delivery: {poll_interval: 2s}
destinations:
  - name: a
    url: https://a.example/x
    timeout: 3s
    success_status: [200]
    retry: {max_attempts: 1, initial_interval: 5s, max_interval: 5s, max_age: 1m}
    concurrency: 9
    rate_limit: 0.5
`
	c, err := Load([]byte(text), "")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	d := c.Destinations[0]
	got := []any{c.Listen, c.Admin.Listen, c.Store.Redis.Prefix, c.Store.Redis.Retention.D(),
		c.Ingest.MaxBodyBytes, c.Ingest.ResponseStatus, c.Ingest.Unmatched, c.Dedupe.TTL.D(),
		c.Delivery.PollInterval.D(), d.Timeout.D(), d.SuccessStatus, d.Retry, d.Concurrency, d.RateLimit}
	want := []any{":8000", ":9000", "x:", time.Hour,
		int64(10), 200, "reject", time.Minute,
		2 * time.Second, 3 * time.Second, []int{200},
		Retry{MaxAttempts: 1, InitialInterval: Duration(5 * time.Second), MaxInterval: Duration(5 * time.Second), MaxAge: Duration(time.Minute)}, 9, 0.5}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

// TestSetDefaultsByHand covers a Config built in code, without Load.
func TestSetDefaultsByHand(t *testing.T) {
	c := &Config{Destinations: []Destination{{Name: "a", Concurrency: 2}}}
	c.SetDefaults()
	if c.Store.Embedded == nil || c.Store.Embedded.Path != DefaultEmbeddedPath {
		t.Errorf("store = %+v, want embedded %s", c.Store, DefaultEmbeddedPath)
	}
	if d := c.Destinations[0]; d.Concurrency != 2 || d.Retry.MaxAttempts != DefaultMaxAttempts {
		t.Errorf("destination = %+v, want concurrency kept and retry defaulted", d)
	}
}

// TestLoadDeliveryKeys covers the keys of trustworthy delivery: the retry
// schedule (and the max_attempts it implies), the circuit breaker, redirects
// and TLS.
func TestLoadDeliveryKeys(t *testing.T) {
	ca := filepath.Join("testdata", "ca.pem")
	tests := []struct {
		name string
		yaml string
		want func(Destination) bool
	}{
		{"schedule sets max_attempts to its length + 1",
			"retry: {schedule: [0s, 5s, 5m, 30m, 2h, 5h, 10h, 10h]}",
			func(d Destination) bool {
				return d.Retry.MaxAttempts == 9 && len(d.Retry.Schedule) == 8 && d.Retry.Schedule[3].D() == 30*time.Minute
			}},
		{"explicit max_attempts beside a schedule is kept",
			"retry: {schedule: [1s], max_attempts: 4}",
			func(d Destination) bool { return d.Retry.MaxAttempts == 4 }},
		{"empty schedule means exponential",
			"retry: {schedule: []}",
			func(d Destination) bool { return d.Retry.MaxAttempts == DefaultMaxAttempts }},
		{"circuit keeps explicit values",
			"circuit: {failures: 3, cooldown: 1m}",
			func(d Destination) bool {
				return d.Circuit == Circuit{Failures: 3, Cooldown: Duration(time.Minute), FirstCooldown: Duration(5 * time.Second)}
			}},
		{"first cooldown defaults to the cooldown when that is shorter",
			"circuit: {cooldown: 2s}",
			func(d Destination) bool { return d.Circuit.FirstCooldown == Duration(2*time.Second) }},
		{"circuit disabled",
			"circuit: {disabled: true}",
			func(d Destination) bool { return d.Circuit.Disabled && d.Circuit.Failures == DefaultCircuitFailures }},
		{"redirects and tls",
			"follow_redirects: true\n    tls: {ca_file: '" + ca + "'}",
			func(d Destination) bool { return d.FollowRedirects && d.TLS.CAFile == ca && !d.TLS.InsecureSkipVerify }},
		{"insecure",
			"tls: {insecure_skip_verify: true}",
			func(d Destination) bool { return d.TLS.InsecureSkipVerify }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := "destinations:\n  - name: a\n    url: https://a.example/x\n    " + tt.yaml + "\n"
			c, err := Load([]byte(text), "")
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if d := c.Destinations[0]; !tt.want(d) {
				t.Errorf("destination = %+v", d)
			}
		})
	}
}

// TestNoSecondHome fails when code under relay/ or cmd/ keeps a default of
// its own for something config has a Default* for: a Default* constant or
// variable whose name ends like one of config's (Retention, LeaseMargin,
// Prefix, Timeout...) and whose value is not config's, or a fallback
// "if x <= 0 { x = <literal> }" on such a name.
func TestNoSecondHome(t *testing.T) {
	fset := token.NewFileSet()
	own, err := parser.ParseFile(fset, "defaults.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string // config's defaults without "Default"
	for name := range topLevel(own) {
		if s, ok := strings.CutPrefix(name, "Default"); ok {
			names = append(names, s)
		}
	}
	// homeOf returns the config default that name (a Default* or a field)
	// would duplicate, or "".
	homeOf := func(name string) string {
		name = strings.TrimPrefix(name, "Default")
		if len(name) < 5 { // "Limit", "Prefix" and longer
			return ""
		}
		for _, n := range names {
			if strings.HasSuffix(strings.ToLower(n), strings.ToLower(name)) {
				return "Default" + n
			}
		}
		return ""
	}
	// Same name, another thing: an agent process's attempts at once
	// across all its destinations is not a destination's concurrency.
	allowed := map[string]bool{"relay/agent.DefaultConcurrency": true}
	var checked int
	for _, root := range []string{"../relay", "../cmd"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			checked++
			pkg := strings.TrimPrefix(filepath.ToSlash(filepath.Dir(path)), "../")
			for name, value := range topLevel(f) {
				if home := homeOf(name); strings.HasPrefix(name, "Default") && home != "" &&
					!allowed[pkg+"."+name] && !refersToConfig(value) {
					t.Errorf("%s: %s has a value of its own; use config.%s", path, name, home)
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				if target, lit := fallback(n); lit != nil {
					if home := homeOf(target); home != "" {
						t.Errorf("%s: %s falls back on %s; use config.%s",
							fset.Position(lit.Pos()), target, lit.Value, home)
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked < 50 {
		t.Fatalf("checked %d files, want the whole of relay/ and cmd/", checked)
	}
}

// topLevel returns the package-level constants and variables of f with
// their value expressions (nil for none).
func topLevel(f *ast.File) map[string]ast.Expr {
	out := map[string]ast.Expr{}
	for _, decl := range f.Decls {
		g, ok := decl.(*ast.GenDecl)
		if !ok || (g.Tok != token.CONST && g.Tok != token.VAR) {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, id := range vs.Names {
				var v ast.Expr
				if i < len(vs.Values) {
					v = vs.Values[i]
				}
				out[id.Name] = v
			}
		}
	}
	return out
}

// refersToConfig reports whether e is config.Something.
func refersToConfig(e ast.Expr) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	x, ok := sel.X.(*ast.Ident)
	return ok && x.Name == "config"
}

// fallback matches "if X <= 0 { X = ... }" (or == 0, == "", < 1) whose
// assigned value holds a literal, and returns X's last name and the literal.
func fallback(n ast.Node) (string, *ast.BasicLit) {
	stmt, ok := n.(*ast.IfStmt)
	if !ok {
		return "", nil
	}
	cond, ok := stmt.Cond.(*ast.BinaryExpr)
	if !ok || (cond.Op != token.LEQ && cond.Op != token.EQL && cond.Op != token.LSS) {
		return "", nil
	}
	for _, s := range stmt.Body.List {
		as, ok := s.(*ast.AssignStmt)
		if !ok || len(as.Lhs) != 1 || len(as.Rhs) != 1 || types.ExprString(as.Lhs[0]) != types.ExprString(cond.X) {
			continue
		}
		var lit *ast.BasicLit
		ast.Inspect(as.Rhs[0], func(n ast.Node) bool {
			if refersToConfig(asExpr(n)) {
				return false
			}
			if l, ok := n.(*ast.BasicLit); ok && lit == nil {
				lit = l
			}
			return true
		})
		if lit != nil {
			name := types.ExprString(as.Lhs[0])
			return name[strings.LastIndex(name, ".")+1:], lit
		}
	}
	return "", nil
}

func asExpr(n ast.Node) ast.Expr {
	e, _ := n.(ast.Expr)
	return e
}
