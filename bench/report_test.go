package bench

import (
	"fmt"
	"strings"
	"time"
)

// report gathers the benchmark's figures and renders them as markdown.
type report struct {
	set     settings
	machine []string
	tls     []string
	targets []string // names, mxward first
	runs    map[cell]map[string][]runOnce

	mxwardHWM int64            // KiB
	peaks     map[string]*peak // sampled; read after the samplers have stopped
	idle      []idleResult
	checks    []string
}

// stat summarises one server's runs of one cell.
type stat struct {
	rate, minRate, maxRate float64
	p50, p99               float64 // milliseconds, median over rounds
	cpu                    float64 // ms per message, median over rounds
	other                  float64 // other processes' CPU use in cores, median over rounds
}

func summarise(runs []runOnce) stat {
	var rates, p50, p99, cpu, other []float64
	for _, r := range runs {
		rates = append(rates, r.res.rate())
		p50 = append(p50, ms(r.res.percentile(50)))
		p99 = append(p99, ms(r.res.percentile(99)))
		cpu = append(cpu, cpuPerMessage(r))
		other = append(other, otherCores(r))
	}
	s := stat{rate: median(rates), p50: median(p50), p99: median(p99), cpu: median(cpu), other: median(other)}
	if len(rates) > 0 {
		s.minRate, s.maxRate = rates[0], rates[0]
		for _, r := range rates {
			s.minRate, s.maxRate = min(s.minRate, r), max(s.maxRate, r)
		}
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

func cellColumns(c cell) string {
	mode := "plain"
	if c.startTLS {
		mode = "STARTTLS"
	}
	return fmt.Sprintf("%s | %d | %s", sizeString(c.size), c.clients, mode)
}

func (r *report) markdown() string {
	var b strings.Builder
	b.WriteString("### Machine\n\n")
	for _, l := range r.machine {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	fmt.Fprintf(&b, "\nEach run: one message per connection, lockstep (no pipelining), until %d messages or %v, whichever first; %d rounds over the matrix, the order of the servers rotating; figures are medians over the rounds.\n\n",
		r.set.messages, r.set.duration, r.set.rounds)
	for _, l := range r.tls {
		fmt.Fprintf(&b, "- STARTTLS with %s\n", l)
	}

	if len(r.runs) > 0 && len(r.targets) > 1 {
		others := r.targets[1:]
		b.WriteString("\n### Messages accepted per second\n\n| Message | Clients | TLS |")
		for _, name := range r.targets {
			fmt.Fprintf(&b, " %s msg/s (min–max) |", name)
		}
		for _, name := range others {
			fmt.Fprintf(&b, " mxward / %s |", name)
		}
		b.WriteString("\n|---|--:|---|" + strings.Repeat("--:|", len(r.targets)+len(others)) + "\n")
		for _, c := range matrix() {
			runs := r.runs[c]
			if runs == nil {
				continue
			}
			fmt.Fprintf(&b, "| %s |", cellColumns(c))
			for _, name := range r.targets {
				s := summarise(runs[name])
				fmt.Fprintf(&b, " %.0f (%.0f–%.0f) |", s.rate, s.minRate, s.maxRate)
			}
			mx := summarise(runs[r.targets[0]])
			for _, name := range others {
				if o := summarise(runs[name]); o.rate > 0 {
					fmt.Fprintf(&b, " **%.2f×** |", mx.rate/o.rate)
				} else {
					b.WriteString(" – |")
				}
			}
			b.WriteString("\n")
		}

		b.WriteString("\n### Latency and CPU per message\n\nSession latency (connect to the reply to QUIT), p50 / p99 in ms; server CPU time per accepted message in ms (all of the server's processes); and the CPU the rest of the machine used meanwhile, in cores (noise: 0 on a quiet machine).\n\n| Message | Clients | TLS |")
		for _, name := range r.targets {
			fmt.Fprintf(&b, " %s p50 / p99 | %s CPU |", name, name)
		}
		b.WriteString(" Other processes, cores |\n|---|--:|---|" + strings.Repeat("--:|", 2*len(r.targets)+1) + "\n")
		for _, c := range matrix() {
			runs := r.runs[c]
			if runs == nil {
				continue
			}
			fmt.Fprintf(&b, "| %s |", cellColumns(c))
			var other []string
			for _, name := range r.targets {
				s := summarise(runs[name])
				fmt.Fprintf(&b, " %.1f / %.1f | %.2f |", s.p50, s.p99, s.cpu)
				other = append(other, fmt.Sprintf("%.2f", s.other))
			}
			fmt.Fprintf(&b, " %s |\n", strings.Join(other, " / "))
		}
	}

	if len(r.peaks) > 0 {
		b.WriteString("\n### Memory during the throughput runs\n\n| | Peak RSS | Peak PSS (sampled) | Processes at peak RSS |\n|---|--:|--:|--:|\n")
		for _, name := range r.targets {
			p := r.peaks[name]
			if p == nil {
				continue
			}
			rss := fmt.Sprintf("%s (sum, sampled every %v)", mib(p.rss.rssKiB), sampleEvery)
			if name == nameMxward {
				rss = fmt.Sprintf("%s (VmHWM)", mib(r.mxwardHWM))
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %d |\n", name, rss, mib(p.pss), p.rss.procs)
		}
	}

	if len(r.idle) > 0 {
		b.WriteString("\n### Memory of idle connections\n\n")
		b.WriteString("| Server | Idle connections | Mode | RSS before → after | PSS before → after | Processes | RSS per connection | PSS per connection | PSS for 1,000 |\n")
		b.WriteString("|---|--:|---|--:|--:|--:|--:|--:|--:|\n")
		for _, i := range r.idle {
			mode := "greeting read"
			if i.startTLS {
				mode = "after STARTTLS + EHLO"
			}
			rss := i.perConn(func(m memory) int64 { return m.rssKiB })
			pss := i.perConn(func(m memory) int64 { return m.pssKiB })
			thousand := fmt.Sprintf("%.1f MiB", pss*1000/1024)
			if i.conns != 1000 {
				thousand += " (extrapolated)"
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %s → %s | %s → %s | %d → %d | **%.1f KiB** | %.1f KiB | %s |\n",
				i.server, i.conns, mode, mib(i.before.rssKiB), mib(i.after.rssKiB), mib(i.before.pssKiB), mib(i.after.pssKiB),
				i.before.procs, i.after.procs, rss, pss, thousand)
		}
	}

	if len(r.checks) > 0 {
		b.WriteString("\n### Checks\n\n")
		for _, c := range r.checks {
			fmt.Fprintf(&b, "- %s\n", c)
		}
	}
	return b.String()
}
