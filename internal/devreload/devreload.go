// Package devreload watches an app's source files for `wisp run --reload`
// (development only): a change of a Python, ini or TOML file under the app's
// folders calls back, so that the app's workers are replaced. It uses
// inotify through fsnotify.
package devreload

import (
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchedExt are the files whose change reloads the app.
var watchedExt = map[string]bool{".py": true, ".ini": true, ".toml": true, ".cfg": true}

// maxDirs bounds the folders watched (each takes an inotify watch).
const maxDirs = 4000

// debounce gathers the events of one save (editors write, rename and chmod).
const debounce = 100 * time.Millisecond

// Watcher watches folders, recursively.
type Watcher struct {
	w     *fsnotify.Watcher
	log   *slog.Logger
	dirs  map[string]bool
	files map[string]bool // files watched by name outside the folders (a config file)
	done  chan struct{}
	once  sync.Once
}

// skipDir reports folders that hold no app code of the user's: caches,
// version control, installed packages and virtualenvs.
func skipDir(path, name string) bool {
	switch name {
	case "__pycache__", "node_modules", "site-packages", "dist-packages", ".git", ".hg", ".svn", ".tox", ".mypy_cache", ".pytest_cache":
		return true
	}
	if strings.HasPrefix(name, ".") && len(name) > 1 {
		return true
	}
	if _, err := os.Stat(filepath.Join(path, "pyvenv.cfg")); err == nil {
		return true // a virtualenv
	}
	return false
}

// Watch watches the folders roots (recursively) and the files, and calls
// onChange with the changed paths, once per burst of changes.
func Watch(roots, files []string, log *slog.Logger, onChange func(paths []string)) (*Watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &Watcher{w: fw, log: log, dirs: map[string]bool{}, files: map[string]bool{}, done: make(chan struct{})}
	for _, r := range roots {
		w.addTree(r)
	}
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			continue
		}
		w.files[abs] = true
		dir := filepath.Dir(abs)
		if !w.dirs[dir] {
			if err := fw.Add(dir); err == nil {
				w.dirs[dir] = true
			}
		}
	}
	go w.loop(onChange)
	return w, nil
}

// Dirs is the number of folders watched.
func (w *Watcher) Dirs() int { return len(w.dirs) }

func (w *Watcher) addTree(root string) {
	root, err := filepath.Abs(root)
	if err != nil {
		return
	}
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if path != root && skipDir(path, d.Name()) {
			return filepath.SkipDir
		}
		if w.dirs[path] {
			return filepath.SkipDir
		}
		if len(w.dirs) >= maxDirs {
			w.log.Warn("--reload: too many folders to watch; the rest are not watched", "max", maxDirs, "root", root)
			return filepath.SkipAll
		}
		if err := w.w.Add(path); err != nil {
			w.log.Warn("--reload: cannot watch a folder", "path", path, "err", err)
			return filepath.SkipDir
		}
		w.dirs[path] = true
		return nil
	})
}

func (w *Watcher) relevant(path string) bool {
	return watchedExt[filepath.Ext(path)] || w.files[path]
}

func (w *Watcher) loop(onChange func([]string)) {
	var timer <-chan time.Time
	changed := map[string]bool{}
	for {
		select {
		case <-w.done:
			return
		case ev, ok := <-w.w.Events:
			if !ok {
				return
			}
			if ev.Has(fsnotify.Create) {
				if st, err := os.Stat(ev.Name); err == nil && st.IsDir() && !skipDir(ev.Name, filepath.Base(ev.Name)) {
					w.addTree(ev.Name)
					continue
				}
			}
			if ev.Op == fsnotify.Chmod || !w.relevant(ev.Name) {
				continue
			}
			changed[ev.Name] = true
			timer = time.After(debounce)
		case err, ok := <-w.w.Errors:
			if !ok {
				return
			}
			w.log.Warn("--reload: file watching", "err", err)
		case <-timer:
			paths := make([]string, 0, len(changed))
			for p := range changed {
				paths = append(paths, p)
			}
			changed = map[string]bool{}
			timer = nil
			onChange(paths)
		}
	}
}

// Close stops watching.
func (w *Watcher) Close() {
	w.once.Do(func() {
		close(w.done)
		w.w.Close()
	})
}
