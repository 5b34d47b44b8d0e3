// Package poolstate is where pools and workers are in their lives, and the
// status snapshot that says so: the supervisor produces it, the control API
// serves it, and `wisp status` and the dashboard show it. It imports nothing
// of wisp, so that those readers need not import the supervisor.
package poolstate

import "fmt"

// State is where a worker process is in its life.
type State int

const (
	Starting State = iota // exec'd, importing its apps; not serving yet
	Ready                 // serving requests
	Draining              // replaced or stopping: finishing in-flight requests
	Stopped               // exited when asked to
	Crashed               // exited on its own, killed, or never became ready
)

func (s State) String() string {
	switch s {
	case Starting:
		return "starting"
	case Ready:
		return "ready"
	case Draining:
		return "draining"
	case Stopped:
		return "stopped"
	case Crashed:
		return "crashed"
	}
	return "unknown"
}

// MarshalText makes State a string in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// PoolState is where a pool is: running its workers, scaled to zero after
// its idle timeout, or stopped by rapid-fail protection (or on demand).
type PoolState string

const (
	PoolRunning PoolState = "running"
	PoolIdle    PoolState = "idle"
	PoolStopped PoolState = "stopped"
)

// Status is a snapshot of the supervisor for `wisp status` and the control API.
type Status struct {
	PID    int    `json:"pid"`
	Config string `json:"config"`
	// Build is the supervisor's build: wisp's version and the commit its
	// binary was built from ("0.1.0 commit abc123").
	Build string       `json:"build,omitempty"`
	Pools []PoolStatus `json:"pools"`
}

// PoolStatus is one pool in a Status.
type PoolStatus struct {
	Name     string    `json:"name"`
	State    PoolState `json:"state"`
	Reason   string    `json:"reason,omitempty"` // why it is stopped
	Failures int       `json:"recent_failures"`
	// ConfigNote says why the running pool differs from the file: a reload
	// or recycle whose workers failed to start.
	ConfigNote string         `json:"config_note,omitempty"`
	Workers    []WorkerStatus `json:"workers"`          // starting, ready, draining
	Exited     []WorkerStatus `json:"exited,omitempty"` // the last few that stopped or crashed
}

// WorkerStatus is one worker process in a Status.
type WorkerStatus struct {
	ID       int     `json:"id"`
	PID      int     `json:"pid"`
	State    State   `json:"state"`
	RSSMB    float64 `json:"rss_mb"`
	Requests uint64  `json:"requests"`
	Conns    int64   `json:"connections"` // open client connections, from the pool's board
	Uptime   string  `json:"uptime"`
	How      string  `json:"how,omitempty"` // an exited worker: why it went (recycled for what, or how it crashed)
	// Build is the build of the worker's binary, as it reported it (""
	// until it did): it differs from the supervisor's when the binary on
	// disk was replaced and the worker started since.
	Build string `json:"build,omitempty"`
}

// UnmarshalText reads a State written by MarshalText.
func (s *State) UnmarshalText(b []byte) error {
	for st := Starting; st <= Crashed; st++ {
		if st.String() == string(b) {
			*s = st
			return nil
		}
	}
	return fmt.Errorf("unknown worker state %q", b)
}
