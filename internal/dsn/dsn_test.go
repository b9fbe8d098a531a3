package dsn

import (
	"testing"

	"mxward/internal/spool"
)

func TestWanted(t *testing.T) {
	// Each row gives the answer for failed, delayed, delivered, relayed, expanded.
	tests := []struct {
		notify string
		want   [5]bool
	}{
		{"", [5]bool{true, true, false, false, false}},
		{"NEVER", [5]bool{}},
		{"never", [5]bool{}},
		{"SUCCESS", [5]bool{false, false, true, true, true}},
		{"FAILURE", [5]bool{true, false, false, false, false}},
		{"DELAY", [5]bool{false, true, false, false, false}},
		{"SUCCESS,FAILURE", [5]bool{true, false, true, true, true}},
		{"SUCCESS,DELAY", [5]bool{false, true, true, true, true}},
		{"FAILURE,DELAY", [5]bool{true, true, false, false, false}},
		{"DELAY,FAILURE", [5]bool{true, true, false, false, false}},
		{"SUCCESS,FAILURE,DELAY", [5]bool{true, true, true, true, true}},
		{"failure, delay", [5]bool{true, true, false, false, false}},
		{" Success ", [5]bool{false, false, true, true, true}},
		// RFC 3461 forbids NEVER with others; if it comes anyway, NEVER wins.
		{"NEVER,FAILURE", [5]bool{}},
		{"FAILURE,NEVER", [5]bool{}},
		// Unknown keywords ask for nothing.
		{"BOGUS", [5]bool{}},
		{"BOGUS,FAILURE", [5]bool{true, false, false, false, false}},
	}
	actions := [5]Action{ActionFailed, ActionDelayed, ActionDelivered, ActionRelayed, ActionExpanded}
	for _, tt := range tests {
		for i, a := range actions {
			env := spool.Envelope{From: "alice@example.net"}
			rcpt := spool.Recipient{Addr: "bob@example.com", Notify: tt.notify}
			if got := Wanted(env, rcpt, a); got != tt.want[i] {
				t.Errorf("Wanted(NOTIFY=%q, %s) = %v, want %v", tt.notify, a, got, tt.want[i])
			}
			// The null reverse-path never gets a notification, whatever it asked for.
			for _, null := range []string{"", "<>", " "} {
				env.From = null
				if Wanted(env, rcpt, a) {
					t.Errorf("Wanted(From=%q, NOTIFY=%q, %s) = true, want false", null, tt.notify, a)
				}
			}
		}
	}
	if Wanted(spool.Envelope{From: "alice@example.net"}, spool.Recipient{}, Action("bogus")) {
		t.Error("Wanted with an unknown action = true")
	}
}

func TestSubject(t *testing.T) {
	tests := []struct {
		a    Action
		want string
	}{
		{ActionFailed, "Undelivered Mail Returned to Sender"},
		{ActionDelayed, "Delayed Mail (still being retried)"},
		{ActionDelivered, "Successful Mail Delivery Report"},
		{ActionRelayed, "Successful Mail Delivery Report"},
		{ActionExpanded, "Successful Mail Delivery Report"},
		{Action("x"), "Delivery Status Notification"},
	}
	for _, tt := range tests {
		if got := Subject(tt.a); got != tt.want {
			t.Errorf("Subject(%q) = %q, want %q", tt.a, got, tt.want)
		}
	}
}

func TestStatusFromReply(t *testing.T) {
	tests := []struct {
		code     int
		enhanced string
		want     string
	}{
		{550, "5.1.1", "5.1.1"},
		{550, "", "5.0.0"},
		{554, "garbage", "5.0.0"},
		{451, "", "4.0.0"},
		{421, "4.7.0", "4.7.0"},
		{250, "", "2.0.0"},
		{250, "2.6.0", "2.6.0"},
		{552, "5.3.4", "5.3.4"},
		{550, "5.100.999", "5.100.999"},
		// The basic code decides the class when the two disagree.
		{450, "5.2.2", "4.2.2"},
		{550, "4.4.1", "5.4.1"},
		// Malformed enhanced codes.
		{550, "5.1", "5.0.0"},
		{550, "5.1.1.1", "5.0.0"},
		{550, "5.1000.1", "5.0.0"},
		{550, "3.1.1", "5.0.0"},
		{550, "5..1", "5.0.0"},
		{550, "5.a.1", "5.0.0"},
		// Codes outside 2xx, 4xx and 5xx have no status.
		{354, "", ""},
		{0, "5.1.1", ""},
		{999, "", ""},
	}
	for _, tt := range tests {
		if got := StatusFromReply(tt.code, tt.enhanced); got != tt.want {
			t.Errorf("StatusFromReply(%d, %q) = %q, want %q", tt.code, tt.enhanced, got, tt.want)
		}
	}
}

func TestRecipientStatusDefault(t *testing.T) {
	tests := []struct {
		rs   RecipientStatus
		want string
	}{
		{RecipientStatus{Action: ActionFailed, Status: "5.1.1"}, "5.1.1"},
		{RecipientStatus{Action: ActionFailed, Status: "4.4.7"}, "4.4.7"}, // expired: kept as given
		{RecipientStatus{Action: ActionFailed}, "5.0.0"},
		{RecipientStatus{Action: ActionFailed, Status: "550"}, "5.0.0"},
		{RecipientStatus{Action: ActionDelayed}, "4.0.0"},
		{RecipientStatus{Action: ActionDelivered}, "2.0.0"},
		{RecipientStatus{Action: ActionRelayed, Status: "x"}, "2.0.0"},
		{RecipientStatus{Action: ActionExpanded}, "2.0.0"},
	}
	for _, tt := range tests {
		if got := tt.rs.status(); got != tt.want {
			t.Errorf("status of %+v = %q, want %q", tt.rs, got, tt.want)
		}
	}
}
