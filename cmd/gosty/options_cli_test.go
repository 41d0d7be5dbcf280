package main

import "testing"

func TestSubmitFlagsPolicyOptions(t *testing.T) {
	sf := submitFlags{options: `{"priority":"low","chunk_seconds":2}`, priority: "high", ttl: "1h",
		callbackURL: "http://127.0.0.1:9/h", clientID: "me", dropSource: true}
	got, err := sf.jobOptions()
	want := `{"callback_url":"http://127.0.0.1:9/h","chunk_seconds":2,"client_id":"me","keep_source":false,"priority":"high","ttl":"1h"}`
	if err != nil || got != want {
		t.Fatalf("got %s (%v), want %s", got, err, want)
	}
	sf = submitFlags{codec: "hevc", dynamicRange: "both"}
	if got, err := sf.jobOptions(); err != nil || got != `{"codec":"hevc","dynamic_range":"both"}` {
		t.Fatalf("--dynamic-range: got %s (%v)", got, err)
	}
}

func TestSubmitFlagAudio(t *testing.T) {
	for flag, want := range map[string]string{"first": `{"audio":"first"}`, "all": `{"audio":"all"}`, "1": `{"audio":[1]}`, "2, 0": `{"audio":[2,0]}`} {
		if got, err := (submitFlags{audio: flag}).jobOptions(); err != nil || got != want {
			t.Errorf("--audio %s: %s (%v), want %s", flag, got, err, want)
		}
	}
	if _, err := (submitFlags{audio: "french"}).jobOptions(); err == nil {
		t.Error("--audio french accepted")
	}
}
