package archtest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Forbidden dependency groups. A entry ending in "/" forbids everything
// below it; otherwise the path itself and everything below it.
var (
	cameraAndGPIO = []string{"github.com/blackjack/webcam", "periph.io/"}
	serverClients = []string{"github.com/minio/", "github.com/eclipse/paho"}
	anyProject    = []string{"framepush/"}
	// The agent's own parts, which nothing downstream of capture and
	// nothing on the receiving side may link.
	agentSide = []string{"framepush/capture", "framepush/agent", "framepush/config"}
)

func join(groups ...[]string) []string {
	var out []string
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// rules is the table of docs/ARCHITECTURE.md ("Rules"): each package, the
// dependencies it must not have (direct or indirect, tests excluded), and
// why. Keep the two in step.
var rules = []struct {
	pkg    string
	forbid []string
	why    string
}{
	{"framepush/frame", anyProject, "the leaf every stage shares imports no project package"},
	{"framepush/internal/bytesize", anyProject, "sizes are shared by the agent's config and framerecv's flags"},
	{"framepush/wire", join(cameraAndGPIO, agentSide, []string{"framepush/queue", "framepush/sender", "framepush/receiver"}), "the protocol knows no stage"},
	{"framepush/queue", join(cameraAndGPIO, agentSide, []string{"framepush/sender", "framepush/receiver"}), "the queue holds frame.Frames, whoever made them"},
	{"framepush/sender", join(cameraAndGPIO, agentSide, []string{"framepush/queue", "framepush/receiver"}), "`framepush send` and the agent share a transport that knows no camera"},
	{"framepush/receiver", join(cameraAndGPIO, agentSide, []string{"framepush/queue", "framepush/sender"}), "the server side links no agent code"},
	{"framepush/cmd/framerecv", join(cameraAndGPIO, agentSide, []string{"framepush/queue", "framepush/sender"}), "the receiver binary links neither camera, GPIO nor the agent's configuration"},
	{"framepush/capture", join(cameraAndGPIO, []string{"framepush/queue", "framepush/sender", "framepush/receiver", "framepush/agent", "framepush/config"}), "the contracts and the loop link no device library; capture is upstream of every stage"},
	{"framepush/capture/mjpeg", anyProject, "the JPEG helpers are plain byte work"},
	{"framepush/capture/v4l2", []string{"periph.io/", "framepush/queue", "framepush/sender", "framepush/receiver", "framepush/agent", "framepush/config"}, "a source knows its device and the contracts, nothing downstream"},
	{"framepush/capture/gpio", []string{"github.com/blackjack/webcam", "framepush/queue", "framepush/sender", "framepush/receiver", "framepush/agent", "framepush/config"}, "a trigger knows its line and the contracts, nothing downstream"},
	{"framepush/capture/command", join(cameraAndGPIO, []string{"framepush/queue", "framepush/sender", "framepush/receiver", "framepush/agent", "framepush/config"}), "a source knows the contracts, nothing downstream"},
	{"framepush/capture/dir", join(cameraAndGPIO, []string{"framepush/queue", "framepush/sender", "framepush/receiver", "framepush/agent", "framepush/config"}), "a source knows the contracts, nothing downstream"},
	{"framepush/capture/testpattern", join(cameraAndGPIO, []string{"framepush/queue", "framepush/sender", "framepush/receiver", "framepush/agent", "framepush/config"}), "a source knows the contracts, nothing downstream"},
	{"framepush/capture/signal", join(cameraAndGPIO, []string{"framepush/queue", "framepush/sender", "framepush/receiver", "framepush/agent", "framepush/config"}), "a trigger knows the contracts, nothing downstream"},
	{"framepush/config", join(cameraAndGPIO, []string{"framepush/capture", "framepush/agent", "framepush/queue", "framepush/sender", "framepush/receiver"}), "configuration is data; the agent turns it into parts"},
	{"framepush/agent", join(serverClients, []string{"framepush/receiver", "framepush/store/", "framepush/notify"}), "the agent reaches receivers only through its Transport (the sender); a receiver appears in its tests, never in its code"},
	{"framepush/cmd/framepush", join(serverClients, []string{"framepush/receiver", "framepush/store/", "framepush/notify", "html/template"}), "the board binary stays small: no S3 or MQTT client, no receiver, no receiver page (its snapshot uses view/mjpeg only)"},
	{"framepush/store/s3", join(cameraAndGPIO, agentSide, []string{"framepush/queue", "framepush/sender"}), "the S3 store is the receiver's: behind receiver.Store, linked by framerecv only"},
	{"framepush/view/mjpeg", anyProject, "the MJPEG writer is linked into the agent: standard library only"},
	{"framepush/view", join(cameraAndGPIO, agentSide, serverClients, []string{"framepush/queue", "framepush/sender", "framepush/notify"}), "the page knows only what the receiver stored"},
	{"framepush/notify", join(cameraAndGPIO, agentSide, serverClients, []string{"framepush/queue", "framepush/sender", "framepush/view"}), "the notifier seam knows only what the receiver stored"},
	{"framepush/notify/mqtt", join(cameraAndGPIO, agentSide, []string{"framepush/queue", "framepush/sender", "framepush/view", "github.com/minio/"}), "the MQTT notifier knows the seam, not the page or the agent"},
}

// forbidden reports whether dep matches the entry f.
func forbidden(dep, f string) bool {
	if strings.HasSuffix(f, "/") {
		return strings.HasPrefix(dep, f)
	}
	return dep == f || strings.HasPrefix(dep, f+"/")
}

// goTool finds the go command that runs the tests.
func goTool(t *testing.T) string {
	p, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command in PATH (%v): the import rules cannot be checked", err)
	}
	return p
}

// deps lists what pkg links for the board (linux), tests excluded.
func deps(t *testing.T, goCmd, pkg string) []string {
	t.Helper()
	cmd := exec.Command(goCmd, "list", "-deps", "-f", "{{.ImportPath}}", pkg)
	// The rules are about the board build: camera and GPIO code is
	// Linux-only, so list for Linux whatever machine runs the test.
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg += ": " + string(ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %s", pkg, msg)
	}
	return strings.Fields(string(out))
}

func TestImportRules(t *testing.T) {
	goCmd := goTool(t)
	for _, r := range rules {
		t.Run(strings.TrimPrefix(r.pkg, "framepush/"), func(t *testing.T) {
			list := deps(t, goCmd, r.pkg)
			if len(list) == 0 || list[len(list)-1] != r.pkg {
				t.Fatalf("go list -deps %s did not end with the package itself: %q", r.pkg, list)
			}
			for _, dep := range list {
				if dep == r.pkg {
					continue
				}
				for _, f := range r.forbid {
					if forbidden(dep, f) {
						t.Errorf("%s depends on %s (rule %q: %s); see docs/ARCHITECTURE.md", r.pkg, dep, f, r.why)
					}
				}
			}
		})
	}
}

// The checker itself: a rule that could never fire proves nothing, so the
// agent, which links everything, must break the rules of the stages.
func TestImportRulesCatchAViolation(t *testing.T) {
	list := deps(t, goTool(t), "framepush/agent")
	hits := map[string]bool{}
	for _, dep := range list {
		for _, f := range join(cameraAndGPIO, agentSide) {
			if forbidden(dep, f) {
				hits[f] = true
			}
		}
	}
	for _, f := range []string{"github.com/blackjack/webcam", "periph.io/", "framepush/capture", "framepush/config"} {
		if !hits[f] {
			t.Errorf("the agent's dependencies do not match %q: the rule would never catch anything", f)
		}
	}
	if forbidden("framepush/capturex", "framepush/capture") || !forbidden("framepush/capture/v4l2", "framepush/capture") ||
		!forbidden("github.com/minio/minio-go/v7", "github.com/minio/") || forbidden("periph.iox/a", "periph.io/") {
		t.Error("forbidden() matches paths wrongly")
	}
}
