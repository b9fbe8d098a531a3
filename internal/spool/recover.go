package spool

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// maxMissingLogged bounds the per-message error lines for missing bodies, so that a
// lost messages/ directory does not flood the log; the summary line counts them all.
const maxMissingLogged = 100

// recover repairs what a crash can leave behind. It runs in Open while this process
// holds the spool lock exclusively, so no other process is writing bodies.
//
// The crash points of Commit are: before the rename (a file in tmp/), between rename
// and index commit (a body without a row, an orphan) and after the commit (nothing to
// do). Record and Delete remove rows before the body, so they too can only leave
// orphans. A row without a body therefore never comes from a crash of mxward; it is
// reported, not dropped.
//
// Bodies and rows are compared by a merge join: shard directories and their files are
// read in name order, which is ID order, alongside one query over the primary key in
// the same order. Memory stays at one shard's listing however long the queue.
func (s *FileStore) recover(ctx context.Context) error {
	start := time.Now()
	tmpRemoved, err := clearDir(s.tmpDir)
	if err != nil {
		return err
	}

	rows, err := s.rdb.QueryContext(ctx, `SELECT id FROM messages ORDER BY id`)
	if err != nil {
		return fmt.Errorf("spool recovery: list index: %w", err)
	}
	defer rows.Close()
	var (
		cur                         string // next row not yet matched, "" when done
		queryErr                    error
		present, orphans, missing   int
		shardsRemoved, unrecognized int
	)
	next := func() {
		for rows.Next() {
			var id string
			if queryErr = rows.Scan(&id); queryErr != nil {
				break
			}
			if validID(ID(id)) {
				cur = id
				return
			}
			s.log.Error("spool index row with malformed id", "id", id)
		}
		cur = ""
	}
	reportMissing := func() {
		missing++
		if missing <= maxMissingLogged {
			s.log.Error("spool body missing for indexed message", "id", cur)
		}
		next()
	}

	next()
	shards, err := os.ReadDir(s.msgDir)
	if err != nil {
		return fmt.Errorf("spool recovery: %w", err)
	}
	for _, sh := range shards {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := sh.Name()
		if !sh.IsDir() || !validShard(name) {
			unrecognized++
			s.log.Warn("unrecognized entry in spool messages directory", "name", name)
			continue
		}
		for cur != "" && cur[:shardLen] < name {
			reportMissing()
		}
		dir := filepath.Join(s.msgDir, name)
		files, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("spool recovery: %w", err)
		}
		kept := 0
		for _, f := range files {
			fn := f.Name()
			if !f.Type().IsRegular() || !validID(ID(fn)) || fn[:shardLen] != name {
				kept++
				unrecognized++
				s.log.Warn("unrecognized entry in spool shard", "name", filepath.Join(name, fn))
				continue
			}
			for cur != "" && cur < fn {
				reportMissing()
			}
			if cur == fn {
				kept++
				present++
				next()
				continue
			}
			if err := os.Remove(filepath.Join(dir, fn)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("spool recovery: remove orphan body: %w", err)
			}
			orphans++
			s.log.Info("removed orphan spool body", "id", fn)
		}
		for cur != "" && cur[:shardLen] == name {
			reportMissing()
		}
		if kept == 0 && os.Remove(dir) == nil {
			shardsRemoved++
		}
	}
	for cur != "" {
		reportMissing()
	}
	if queryErr == nil {
		queryErr = rows.Err()
	}
	if queryErr != nil {
		return fmt.Errorf("spool recovery: list index: %w", queryErr)
	}

	level := s.log.Info
	if missing > 0 {
		level = s.log.Error
	}
	level("spool recovered",
		"messages", present,
		"tmp_removed", tmpRemoved,
		"orphans_removed", orphans,
		"missing_bodies", missing,
		"shards_removed", shardsRemoved,
		"unrecognized", unrecognized,
		"duration", time.Since(start))
	return nil
}

// clearDir removes everything inside dir.
func clearDir(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("spool recovery: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return 0, fmt.Errorf("spool recovery: %w", err)
		}
	}
	return len(entries), nil
}
