package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"

	"github.com/relaygw/relay/relay/ingest"
)

// claimAndAppend is the least a Redis-backed relay must do per callback:
// claim the dedupe key and append the event to a stream, atomically.
var claimAndAppend = goredis.NewScript(`
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', 86400) then
  redis.call('XADD', KEYS[2], '*', 'body', ARGV[1])
  return 1
end
return 0`)

func main() {
	mode := flag.String("mode", "bare", "bare, bolt or redis")
	listen := flag.String("listen", "127.0.0.1:8180", "listen address")
	path := flag.String("path", "", "bolt: data directory")
	redisURL := flag.String("redis", "redis://127.0.0.1:6379/0", "redis: server URL")
	forward := flag.String("forward", "", "redis: POST every appended body to this URL (XREADGROUP -> POST -> XACK)")
	workers := flag.Int("forward-workers", 8, "redis: forwarder goroutines, as a destination's concurrency")
	flag.Parse()

	h, rdb, err := handler(*mode, *path, *redisURL)
	if err != nil {
		log.Fatal(err)
	}
	if *forward != "" {
		if rdb == nil {
			log.Fatal("-forward needs -mode redis")
		}
		if err := startForwarder(context.Background(), rdb, *forward, *workers); err != nil {
			log.Fatal(err)
		}
	}
	srv := &http.Server{Addr: *listen, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

func handler(mode, path, redisURL string) (http.HandlerFunc, *goredis.Client, error) {
	switch mode {
	case "bare":
		return func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusAccepted)
		}, nil, nil
	case "bolt":
		h, err := boltHandler(path)
		return h, nil, err
	case "redis":
		return redisHandler(redisURL)
	}
	return nil, nil, fmt.Errorf("unknown mode %q", mode)
}

func boltHandler(dir string) (http.HandlerFunc, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	db, err := bolt.Open(filepath.Join(dir, "ceiling.db"), 0o600, nil)
	if err != nil {
		return nil, err
	}
	var seq atomic.Uint64
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		f, _ := ingest.ExtractJSON(body)
		key := binary.BigEndian.AppendUint64(nil, seq.Add(1))
		err = db.Batch(func(tx *bolt.Tx) error {
			dd, err := tx.CreateBucketIfNotExists([]byte("dedupe"))
			if err != nil {
				return err
			}
			if dd.Get([]byte(f["mid"])) != nil {
				return nil
			}
			if err := dd.Put([]byte(f["mid"]), key); err != nil {
				return err
			}
			ev, err := tx.CreateBucketIfNotExists([]byte("events"))
			if err != nil {
				return err
			}
			return ev.Put(key, body)
		})
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}, nil
}

func redisHandler(url string) (http.HandlerFunc, *goredis.Client, error) {
	opt, err := goredis.ParseURL(url)
	if err != nil {
		return nil, nil, err
	}
	opt.PoolSize = 256
	rdb := goredis.NewClient(opt)
	if err := claimAndAppend.Load(context.Background(), rdb).Err(); err != nil {
		return nil, nil, err
	}
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		f, _ := ingest.ExtractJSON(body)
		err = claimAndAppend.EvalSha(r.Context(), rdb, []string{"ceil:dd:" + f["mid"], stream}, body).Err()
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}, rdb, nil
}

const stream = "ceil:stream"

// startForwarder is the least a Redis-backed relay must do per delivery:
// read entries as a consumer group, POST each body, acknowledge it.
func startForwarder(ctx context.Context, rdb *goredis.Client, url string, workers int) error {
	err := rdb.XGroupCreateMkStream(ctx, stream, "fwd", "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return err
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for i := range workers {
		go forward(ctx, rdb, client, url, "c"+strconv.Itoa(i))
	}
	return nil
}

func forward(ctx context.Context, rdb *goredis.Client, client *http.Client, url, consumer string) {
	for ctx.Err() == nil {
		res, err := rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{
			Group: "fwd", Consumer: consumer, Streams: []string{stream, ">"}, Count: 16, Block: time.Second,
		}).Result()
		if err != nil {
			if err != goredis.Nil {
				time.Sleep(10 * time.Millisecond) // a failing Redis: do not spin
			}
			continue
		}
		for _, s := range res {
			ids := make([]string, 0, len(s.Messages))
			for _, m := range s.Messages {
				body, _ := m.Values["body"].(string)
				resp, err := client.Post(url, "application/json", strings.NewReader(body))
				if err != nil {
					continue // left pending, as a relay would retry it
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ids = append(ids, m.ID)
			}
			if len(ids) > 0 {
				rdb.XAck(ctx, stream, "fwd", ids...)
			}
		}
	}
}
