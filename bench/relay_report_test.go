package bench

import (
	"fmt"
	"strings"
	"time"
)

// relayReport gathers the relay benchmark's figures and renders them as markdown.
type relayReport struct {
	set     relaySettings
	machine []string
	targets []string // names; mxward first, Postfix last
	runs    map[string][]relayRun
	peaks   map[string]*peak // sampled during warm-up and runs
	hwm     map[string]int64 // mxward instances' VmHWM, KiB
	checks  []string
	profile *relayProfile
}

// relayStat summarises one server's runs: medians over the rounds.
type relayStat struct {
	accepted                    int
	acceptRate, e2eRate         float64
	minE2E, maxE2E              float64
	e2e, drain                  time.Duration
	duringLoad                  float64 // share of the messages delivered before the load ended
	cpu, cpuMs                  float64 // server CPU seconds per run, and ms per message
	client, sinkCPU, rest       float64 // benchmark process, seconds per run
	sinkMs                      float64 // sink CPU ms per message
	other                       float64 // other processes, cores
	conns, handshakes, messages float64
}

func summariseRelay(runs []relayRun) relayStat {
	var s relayStat
	if len(runs) == 0 {
		return s
	}
	col := func(f func(relayRun) float64) float64 {
		xs := make([]float64, len(runs))
		for i, r := range runs {
			xs[i] = f(r)
		}
		return median(xs)
	}
	s.accepted = int(col(func(r relayRun) float64 { return float64(r.res.sent) }))
	s.acceptRate = col(func(r relayRun) float64 { return r.res.rate() })
	s.e2eRate = col(relayRun.e2eRate)
	s.minE2E, s.maxE2E = runs[0].e2eRate(), runs[0].e2eRate()
	for _, r := range runs {
		s.minE2E, s.maxE2E = min(s.minE2E, r.e2eRate()), max(s.maxE2E, r.e2eRate())
	}
	s.e2e = time.Duration(col(func(r relayRun) float64 { return float64(r.e2e) }))
	s.drain = time.Duration(col(func(r relayRun) float64 { return float64(max(r.e2e-r.res.elapsed, 0)) }))
	s.duringLoad = col(func(r relayRun) float64 { return float64(r.duringLoad) / float64(max(r.res.sent, 1)) })
	s.cpu = col(func(r relayRun) float64 { return r.cpu.Seconds() })
	s.cpuMs = col(relayRun.cpuPerMessage)
	s.client = col(func(r relayRun) float64 { return r.clientCPU.Seconds() })
	s.sinkCPU = col(func(r relayRun) float64 { return r.sinkCPU.Seconds() })
	s.rest = col(func(r relayRun) float64 { return (r.selfCPU - r.clientCPU - r.sinkCPU).Seconds() })
	s.sinkMs = col(func(r relayRun) float64 { return ms(r.sinkCPU) / float64(max(r.res.sent, 1)) })
	s.other = col(func(r relayRun) float64 {
		if r.drained <= 0 {
			return 0
		}
		return r.otherCPU.Seconds() / r.drained.Seconds()
	})
	s.conns = col(func(r relayRun) float64 { return float64(r.sink.sessions) })
	s.handshakes = col(func(r relayRun) float64 { return float64(r.sink.handshakes) })
	s.messages = col(func(r relayRun) float64 { return float64(r.sink.messages) })
	return s
}

func (r *relayReport) markdown() string {
	var b strings.Builder
	b.WriteString("### Machine\n\n")
	for _, l := range r.machine {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	inbound := "plaintext"
	if r.set.inboundTLS {
		inbound = "STARTTLS"
	}
	fmt.Fprintf(&b, "\nEach run: %d messages of 1 KiB (or as many as %v allow) from %d concurrent clients, one message per connection, lockstep, %s inbound; outbound to the sink with STARTTLS required; %d round(s), the order of the servers rotating; figures are medians over the rounds. End to end is from the first connect of the load to the sink's acknowledgement of the run's last message.\n",
		r.set.messages, r.set.duration, r.set.clients, inbound, r.set.rounds)

	if len(r.runs) > 0 {
		b.WriteString("\n### Throughput\n\n")
		b.WriteString("| Server | Messages | Accepted msg/s (during the load) | Delivered by the end of the load | End to end | End to end msg/s (min–max) | Last delivery after the load |\n")
		b.WriteString("|---|--:|--:|--:|--:|--:|--:|\n")
		for _, name := range r.targets {
			s := summariseRelay(r.runs[name])
			fmt.Fprintf(&b, "| %s | %d | %.0f | %.0f%% | %.1f s | %.0f (%.0f–%.0f) | %.1f s |\n",
				name, s.accepted, s.acceptRate, 100*s.duringLoad, s.e2e.Seconds(), s.e2eRate, s.minE2E, s.maxE2E, s.drain.Seconds())
		}
		var mxNames, pfNames []string
		for _, name := range r.targets {
			if strings.HasPrefix(name, "Postfix") {
				pfNames = append(pfNames, name)
			} else {
				mxNames = append(mxNames, name)
			}
		}
		b.WriteString("\n### mxward / Postfix\n\n| | End to end |")
		for _, pf := range pfNames {
			fmt.Fprintf(&b, " / %s, end to end | / %s, accepted |", pf, pf)
		}
		b.WriteString("\n|---|--:|" + strings.Repeat("--:|", 2*len(pfNames)) + "\n")
		for _, mx := range mxNames {
			m := summariseRelay(r.runs[mx])
			fmt.Fprintf(&b, "| %s | %.0f msg/s |", mx, m.e2eRate)
			for _, pf := range pfNames {
				p := summariseRelay(r.runs[pf])
				for _, x := range [][2]float64{{m.e2eRate, p.e2eRate}, {m.acceptRate, p.acceptRate}} {
					if x[1] > 0 {
						fmt.Fprintf(&b, " **%.2f×** |", x[0]/x[1])
					} else {
						b.WriteString(" – |")
					}
				}
			}
			b.WriteString("\n")
		}

		b.WriteString("\n### CPU over the run (load start until the server's queue is empty)\n\n")
		b.WriteString("| Server | Server CPU | per message | Load client CPU | Sink CPU | Sink per message | Rest of the benchmark process | Other processes, cores |\n")
		b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, name := range r.targets {
			s := summariseRelay(r.runs[name])
			fmt.Fprintf(&b, "| %s | %.1f s | %.3f ms | %.1f s | %.1f s | %.3f ms | %.1f s | %.2f |\n",
				name, s.cpu, s.cpuMs, s.client, s.sinkCPU, s.sinkMs, s.rest, s.other)
		}

		for _, name := range r.targets {
			for _, run := range r.runs[name] {
				if !run.profiled {
					fmt.Fprintf(&b, "\n(%s: the CPU profiler was busy in a run, so the benchmark process's CPU is not split there: all of it is under \"rest\".)\n", name)
					break
				}
			}
		}

		b.WriteString("\n### The outbound hop, as the sink saw it\n\n")
		b.WriteString("| Server | Messages | Connections | Messages per connection | TLS handshakes |\n|---|--:|--:|--:|--:|\n")
		for _, name := range r.targets {
			s := summariseRelay(r.runs[name])
			fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.1f | %.0f |\n", name, s.messages, s.conns, s.messages/max(s.conns, 1), s.handshakes)
		}
	}

	if len(r.peaks) > 0 {
		b.WriteString("\n### Memory (warm-up and runs)\n\n| Server | Peak RSS | Peak PSS (sampled) | Processes at peak RSS |\n|---|--:|--:|--:|\n")
		for _, name := range r.targets {
			p := r.peaks[name]
			if p == nil {
				continue
			}
			rss := fmt.Sprintf("%s (sum, sampled every %v)", mib(p.rss.rssKiB), relaySampleEvery)
			if hwm, ok := r.hwm[name]; ok {
				rss = fmt.Sprintf("%s (VmHWM)", mib(hwm))
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %d |\n", name, rss, mib(p.pss), p.rss.procs)
		}
	}

	if len(r.checks) > 0 {
		b.WriteString("\n### Checks\n\n")
		for _, c := range r.checks {
			fmt.Fprintf(&b, "- %s\n", c)
		}
	}

	if p := r.profile; p != nil {
		fmt.Fprintf(&b, "\n### Profiling pass (mxward, log level warn, CPU profile from start-up; files in %s)\n\n", p.dir)
		fmt.Fprintf(&b, "%d messages, accepted %.0f/s, end to end %.0f/s, server CPU %.3f ms per message.\n\n```\n%s```\n",
			p.run.res.sent, p.run.res.rate(), p.run.e2eRate(), p.run.cpuPerMessage(), p.cpuTop)
	}
	return b.String()
}
