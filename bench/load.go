package bench

import (
	"context"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// load is one cell's worth of traffic: concurrency workers, each sending one
// message per connection, until maxMessages have been started or maxDuration has
// passed, whichever comes first. Both bounds are required, so a run always ends.
type load struct {
	session     session
	concurrency int
	maxMessages int
	maxDuration time.Duration
}

// loadResult is what a load achieved.
type loadResult struct {
	sent     int           // sessions that ended with 221 after a 250 for the message
	failed   int           // sessions that ended any other way
	firstErr error         // the first failure, for the report
	elapsed  time.Duration // from the first connect to the last session's end
	// latencies of the successful sessions, sorted: connect to reply to QUIT.
	latencies []time.Duration
}

// rate is accepted messages per second.
func (r loadResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.sent) / r.elapsed.Seconds()
}

// percentile returns the p-th percentile (0 < p <= 100) of the session latencies,
// nearest rank, or 0 with no successful session.
func (r loadResult) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.latencies))*p/100+0.5) - 1
	return r.latencies[min(max(i, 0), len(r.latencies)-1)]
}

// run sends the load and waits for every session it started. A session that is
// still going at maxDuration finishes (each is bounded by its own timeout), so
// elapsed can exceed maxDuration by one session's time.
func (l load) run(ctx context.Context) loadResult {
	var (
		tickets atomic.Int64
		mu      sync.Mutex
		res     loadResult
		wg      sync.WaitGroup
	)
	d := &net.Dialer{Timeout: l.session.timeout}
	start := time.Now()
	stopAt := start.Add(l.maxDuration)
	for range l.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			var sent, failed int
			var firstErr error
			for ctx.Err() == nil && tickets.Add(1) <= int64(l.maxMessages) && time.Now().Before(stopAt) {
				t0 := time.Now()
				if err := l.session.send(ctx, d); err != nil {
					failed++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				sent++
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			defer mu.Unlock()
			res.sent += sent
			res.failed += failed
			if res.firstErr == nil {
				res.firstErr = firstErr
			}
			res.latencies = append(res.latencies, lat...)
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	slices.Sort(res.latencies)
	return res
}
