package redis

import (
	"embed"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFiles embed.FS

// scripts holds the Lua scripts, each the format marker's value (FORMAT), the
// shared prelude and its own body. Script.Run sends EVALSHA and falls back to EVAL when the server's
// script cache lost it (after a restart).
type scripts struct {
	accept, lease, extend, release, outcome         *goredis.Script
	replayDLQ, deleteDLQ, replayParked, event, list *goredis.Script
	expireParked                                    *goredis.Script
}

// newScripts builds the scripts for a store whose format marker holds
// format (formatValue).
func newScripts(format string) (*scripts, error) {
	prelude, err := luaFiles.ReadFile("lua/prelude.lua")
	if err != nil {
		return nil, err
	}
	var firstErr error
	load := func(name string) *goredis.Script {
		body, err := luaFiles.ReadFile("lua/" + name + ".lua")
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("script %s: %w", name, err)
		}
		return goredis.NewScript("local FORMAT = '" + format + "'\n" + string(prelude) + "\n" + string(body))
	}
	sc := &scripts{
		accept:       load("accept"),
		lease:        load("lease"),
		extend:       load("extend"),
		release:      load("release"),
		outcome:      load("outcome"),
		replayDLQ:    load("replay_dlq"),
		deleteDLQ:    load("delete_dlq"),
		replayParked: load("replay_parked"),
		event:        load("event"),
		list:         load("list"),
		expireParked: load("expire_parked"),
	}
	return sc, firstErr
}

func (sc *scripts) all() []*goredis.Script {
	return []*goredis.Script{
		sc.accept, sc.lease, sc.extend, sc.release, sc.outcome,
		sc.replayDLQ, sc.deleteDLQ, sc.replayParked, sc.event, sc.list, sc.expireParked,
	}
}
