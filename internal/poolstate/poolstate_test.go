package poolstate

import (
	"encoding/json"
	"testing"
)

func TestStateJSON(t *testing.T) {
	for st := Starting; st <= Crashed; st++ {
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		var back State
		if err := json.Unmarshal(b, &back); err != nil || back != st {
			t.Errorf("state %v: round trip gave %v, %v", st, back, err)
		}
	}
	var s State
	if err := json.Unmarshal([]byte(`"bogus"`), &s); err == nil {
		t.Error("unknown state accepted")
	}
}
