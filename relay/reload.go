package relay

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/admin"
	"github.com/relaygw/relay/relay/route"
)

// Reload re-reads the config file the relay started from and applies what
// can change at run time: routes, ingest and dedupe settings, destinations,
// agents and the admin token. `relay serve` calls it on SIGHUP, and POST
// /api/reload calls it too.
//
// A file with any problem is refused whole: every problem is logged as
// FILE:LINE: message, the error (a config.Errors) lists them, and the
// running config stays. A good file is applied destinations first, then
// routes, so a new route never names a destination that is not running
// yet. Deliveries queued for a destination the new file removes stay
// queued, are reported (ReloadReport.Stranded, a warning in the log) and
// flow again if the destination comes back. Changed destination settings
// apply from each delivery's next attempt. Listener and store settings need
// a restart; they are reported in RestartRequired and keep their running
// values.
func (s *Server) Reload(ctx context.Context) (admin.ReloadReport, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	rep, err := s.reload(ctx)
	s.lastReload.Store(admin.NewReloadResult(time.Now(), rep, err))
	return rep, err
}

func (s *Server) reload(ctx context.Context) (admin.ReloadReport, error) {
	old := s.live.Load()
	if old.File == "" {
		return admin.ReloadReport{}, errors.New("relay: reload: the config was not loaded from a file")
	}
	load := s.opts.Load
	if load == nil {
		load = config.LoadFile
	}
	cfg, err := load(old.File)
	if err != nil {
		s.refuse(old.File, err)
		return admin.ReloadReport{}, err
	}
	rep := compare(old, cfg)
	for _, w := range cfg.Warnings {
		rep.Warnings = append(rep.Warnings, w.Error())
		s.log.Warn("config: " + w.Error())
	}
	if err := s.apply(old, cfg); err != nil {
		s.refuse(old.File, err)
		return admin.ReloadReport{}, err
	}
	rep.Stranded = s.stranded(ctx, rep.Removed)
	s.metrics.Reloaded(true)
	s.log.Info("relay: config reloaded", "file", cfg.File, "routes", rep.Routes, "destinations", rep.Destinations,
		"added", rep.Added, "removed", rep.Removed, "changed", rep.Changed)
	for dest, n := range rep.Stranded {
		s.log.Warn("relay: destination removed with deliveries still queued; they stay queued and flow again if it is configured again",
			"destination", dest, "queued", n)
	}
	if len(rep.RestartRequired) > 0 {
		s.log.Warn("relay: changed settings apply only after a restart; the running values stay", "keys", rep.RestartRequired)
	}
	s.warnOpenAdmin(cfg.Admin.Token)
	return rep, nil
}

// apply swaps the running config for cfg. Each step that can fail comes
// before the steps that cannot, and a failure undoes what was done.
func (s *Server) apply(old, cfg *config.Config) error {
	table := route.New(cfg.Routes).WithLog(s.log)
	settings, err := ingestSettings(cfg, table)
	if err != nil {
		return fmt.Errorf("relay: reload ingest: %w", err)
	}
	proxies, err := adminProxies(cfg)
	if err != nil {
		return fmt.Errorf("relay: reload: %w", err)
	}
	if err := s.deliver.Update(cfg.Destinations); err != nil {
		return fmt.Errorf("relay: reload destinations: %w", err)
	}
	if s.agents != nil {
		if err := s.agents.Reload(cfg); err != nil {
			if uerr := s.deliver.Update(old.Destinations); uerr != nil {
				s.log.Error("relay: restoring the running destinations failed", "err", uerr)
			}
			return fmt.Errorf("relay: reload agents: %w", err)
		}
	}
	s.router.Store(table)
	s.ingest.Update(settings)
	s.admin.SetToken(cfg.Admin.Token)
	s.adminProxies.Store(proxies)
	s.admin.SetPortals(portals(cfg))
	s.metrics.KnowDestinations(destinationNames(cfg))
	s.live.Store(cfg)
	return nil
}

// refuse logs a refused reload: one line per problem, FILE:LINE: message.
func (s *Server) refuse(file string, err error) {
	s.metrics.Reloaded(false)
	var problems config.Errors
	if errors.As(err, &problems) {
		for _, p := range problems {
			s.log.Error("relay: config problem", "problem", p.Error())
		}
		s.log.Error("relay: config reload refused; the running config stays", "file", file, "problems", len(problems))
		return
	}
	s.log.Error("relay: config reload refused; the running config stays", "file", file, "err", err)
}

// stranded counts the deliveries queued for removed destinations.
func (s *Server) stranded(ctx context.Context, removed []string) map[string]int {
	if len(removed) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	d, err := s.store.Depths(ctx)
	if err != nil {
		s.log.Warn("relay: reload: cannot count deliveries left for removed destinations", "err", err)
		return nil
	}
	out := map[string]int{}
	for _, name := range removed {
		if n := d.Queued[name]; n > 0 {
			out[name] = n
		}
	}
	return out
}

// compare reports what a reload from old to cfg changes.
func compare(old, cfg *config.Config) admin.ReloadReport {
	rep := admin.ReloadReport{File: cfg.File, Routes: len(cfg.Routes), Destinations: len(cfg.Destinations)}
	before := map[string]config.Destination{}
	for _, d := range old.Destinations {
		before[d.Name] = d
	}
	for _, d := range cfg.Destinations {
		prev, ok := before[d.Name]
		switch {
		case !ok:
			rep.Added = append(rep.Added, d.Name)
		case !prev.Same(d):
			rep.Changed = append(rep.Changed, d.Name)
		}
		delete(before, d.Name)
	}
	for name := range before {
		rep.Removed = append(rep.Removed, name)
	}
	slices.Sort(rep.Removed)
	for _, c := range []struct {
		key     string
		changed bool
	}{
		{"listen", old.Listen != cfg.Listen},
		{"admin.listen", old.Admin.Listen != cfg.Admin.Listen},
		{"admin.pprof", old.Admin.Pprof != cfg.Admin.Pprof},
		{"admin.metrics_auth", old.Admin.MetricsAuth != cfg.Admin.MetricsAuth},
		{"store", !reflect.DeepEqual(old.Store, cfg.Store)},
		{"delivery", !reflect.DeepEqual(old.Delivery, cfg.Delivery)},
		{"log", !reflect.DeepEqual(old.Log, cfg.Log)},
	} {
		if c.changed {
			rep.RestartRequired = append(rep.RestartRequired, c.key)
		}
	}
	return rep
}

func destinationNames(cfg *config.Config) []string {
	names := make([]string, len(cfg.Destinations))
	for i, d := range cfg.Destinations {
		names[i] = d.Name
	}
	return names
}
