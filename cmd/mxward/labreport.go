package main

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"text/tabwriter"
)

// labLegend explains the outcome words of the matrix.
var labLegend = []struct{ Outcome, Meaning string }{
	{"delivered", "reached the destination's MX host; the attacker read nothing"},
	{"read", "the attacker read the message text on the path (it may still have arrived)"},
	{"stolen", "delivered to the attacker's own mail host"},
	{"deferred", "kept in the sender's queue: nothing delivered, nothing read"},
	{"bounced", "given up: nothing delivered, nothing read"},
}

// labCellWord is the matrix word of a cell: its outcome, marked when the attacker got
// the text so that the bad cells stand out in plain text.
func labCellWord(c *labCell) string {
	if c == nil {
		return "?"
	}
	if c.Outcome == "read" || c.Outcome == "stolen" {
		return strings.ToUpper(c.Outcome)
	}
	return c.Outcome
}

// writeLabText prints one matrix per destination kind: attacks down, senders across.
func writeLabText(w io.Writer, r *labReport) {
	fmt.Fprintf(w, "mxward lab: %d messages from %d sender configurations, %d destination kinds, %d attacker behaviours (%.1f s)\n",
		len(r.Cells), len(r.Senders), len(r.Destinations), len(r.Attacks), r.Seconds)
	fmt.Fprintln(w, "\nSenders:")
	for _, s := range r.Senders {
		fmt.Fprintf(w, "  %-15s %s\n", s.Name, s.Title)
	}
	for _, d := range r.Destinations {
		fmt.Fprintf(w, "\nDestination %q: %s\n", d.Kind, d.Title)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprint(tw, "  attack")
		for _, s := range r.Senders {
			fmt.Fprint(tw, "\t"+s.Name)
		}
		fmt.Fprintln(tw)
		for _, a := range r.Attacks {
			fmt.Fprint(tw, "  "+a.Name)
			for _, s := range r.Senders {
				fmt.Fprint(tw, "\t"+labCellWord(r.cell(s.Name, d.Kind, a.Name)))
			}
			fmt.Fprintln(tw)
		}
		tw.Flush()
	}
	fmt.Fprintln(w, "\nOutcomes:")
	for _, l := range labLegend {
		fmt.Fprintf(w, "  %-9s %s\n", l.Outcome, l.Meaning)
	}
	fmt.Fprintln(w, "\nAttacks:")
	for _, a := range r.Attacks {
		fmt.Fprintf(w, "  %-15s %s\n", a.Name, a.Title)
	}
	var bad []*labCell
	for i := range r.Cells {
		if c := &r.Cells[i]; c.AttackerRead {
			bad = append(bad, c)
		}
	}
	fmt.Fprintf(w, "\nThe attacker got %d of %d messages. Every cell comes from a real delivery; \"mxward lab --json\" gives each one's reply and TLS details.\n",
		len(bad), len(r.Cells))
}

// writeLabHTML writes the one-page report: the matrices, with each cell's explanation
// in the cell's title and in a list under its table.
func writeLabHTML(w io.Writer, r *labReport) error {
	type row struct {
		Attack labAttack
		Cells  []*labCell
	}
	type table struct {
		Dest labDestination
		Rows []row
	}
	var tables []table
	for _, d := range r.Destinations {
		t := table{Dest: d}
		for _, a := range r.Attacks {
			rw := row{Attack: a}
			for _, s := range r.Senders {
				rw.Cells = append(rw.Cells, r.cell(s.Name, d.Kind, a.Name))
			}
			t.Rows = append(t.Rows, rw)
		}
		tables = append(tables, t)
	}
	return labHTML.Execute(w, struct {
		R      *labReport
		Tables []table
		Legend any
	}{r, tables, labLegend})
}

var labHTML = template.Must(template.New("lab").Funcs(template.FuncMap{"word": labCellWord}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mxward lab report</title>
<style>
body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top}
td.delivered{background:#d8f0d8}td.deferred,td.bounced{background:#e8e8f4}td.read,td.stolen{background:#f6c8c8;font-weight:bold}
td.none{background:#eee}small{color:#555}details{margin:.2em 0}
</style></head><body>
<h1>mxward lab report</h1>
<p>{{len .R.Cells}} messages, sent {{.R.Started.Format "2006-01-02 15:04:05 UTC"}} through mxward's delivery engine in
{{printf "%.1f" .R.Seconds}} s, inside a simulated internet on 127.0.0.0/8: a DNSSEC-signed DNS tree, receiving MX hosts,
an MTA-STS policy host with a lab certificate authority, and an attacker on the path. Each cell is what happened to one real
message: read back from the sender's queue, the receivers, the attacker's host and the tap on the wire.</p>
<h2>Senders</h2><ul>{{range .R.Senders}}<li><b>{{.Name}}</b>: {{.Title}}{{if .Config}}<pre>{{.Config}}</pre>{{else}} (no configuration at all){{end}}</li>{{end}}</ul>
<h2>Attacks</h2><ul>{{range .R.Attacks}}<li><b>{{.Name}}</b>: {{.Title}}</li>{{end}}</ul>
<h2>Outcomes</h2><ul>{{range .Legend}}<li><b>{{.Outcome}}</b>: {{.Meaning}}</li>{{end}}</ul>
{{range .Tables}}
<h2>Destination “{{.Dest.Kind}}”</h2><p>{{.Dest.Title}}</p>
<table><tr><th>attack \ sender</th>{{range $.R.Senders}}<th>{{.Name}}</th>{{end}}</tr>
{{range .Rows}}<tr><th>{{.Attack.Name}}</th>{{range .Cells}}<td class="{{if .}}{{.Outcome}}{{end}}" title="{{if .}}{{.Explain}}{{end}}">{{word .}}</td>{{end}}</tr>
{{end}}</table>
<details><summary>Why, cell by cell</summary><ul>
{{range .Rows}}{{range .Cells}}{{if .}}<li><b>{{.Attack}} / {{.Sender}}</b>: {{.Explain}} <small>{{.Domain}}</small></li>{{end}}{{end}}{{end}}
</ul></details>
{{end}}
<p><small>Generated by <code>mxward lab --html</code>. The same results as JSON: <code>mxward lab --json</code>.</small></p>
</body></html>
`))
