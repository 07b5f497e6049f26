// Command gitops-check runs the real logic GitOps tools use to judge an
// IwdTenant, so that tests assert their verdicts rather than our reading of them:
//
//	gitops-check kstatus < object.json
//	    prints {"status": ..., "message": ...} from kstatus' status.Compute
//	    (sigs.k8s.io/cli-utils), as Flux and kstatus-based waiters compute it.
//	gitops-check argocd-health -script health.lua [-open-libs] < object.json
//	    runs an Argo CD Lua health check the way Argo CD does and prints the result.
//	gitops-check argocd-tests -script health.lua -tests health_test.yaml
//	    runs every case of an Argo CD style health_test.yaml; fails on a mismatch.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: gitops-check kstatus|argocd-health|argocd-tests ...")
	}
	switch os.Args[1] {
	case "kstatus":
		obj := readObject(os.Stdin)
		result, err := status.Compute(obj)
		if err != nil {
			fail("kstatus: %v", err)
		}
		printJSON(map[string]string{"status": result.Status.String(), "message": result.Message})
	case "argocd-health":
		flags := flag.NewFlagSet("argocd-health", flag.ExitOnError)
		script := flags.String("script", "", "the health.lua")
		openLibs := flags.Bool("open-libs", false, "useOpenLibs, as the argocd-cm setting")
		_ = flags.Parse(os.Args[2:])
		health, err := runHealth(readFile(*script), readObject(os.Stdin), *openLibs)
		if err != nil {
			fail("argocd-health: %v", err)
		}
		printJSON(health)
	case "argocd-tests":
		flags := flag.NewFlagSet("argocd-tests", flag.ExitOnError)
		script := flags.String("script", "", "the health.lua")
		tests := flags.String("tests", "", "the health_test.yaml")
		openLibs := flags.Bool("open-libs", false, "useOpenLibs, as the argocd-cm setting")
		_ = flags.Parse(os.Args[2:])
		os.Exit(runTests(readFile(*script), *tests, *openLibs))
	default:
		fail("unknown command %q", os.Args[1])
	}
}

// Health is what an Argo CD health script returns.
type Health struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

var validStatuses = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true,
	"Suspended": true, "Missing": true, "Unknown": true,
}

// runHealth mirrors Argo CD's VM (util/lua): without useOpenLibs only the
// package, base and table libraries are open (no string, math or io); the
// script gets the object as the global `obj`, runs under a 1 s deadline, and
// must return a table whose status is a known health status.
func runHealth(script string, obj *unstructured.Unstructured, openLibs bool) (Health, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: !openLibs})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return Health{}, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj.Object))
	if err := l.DoString(script); err != nil {
		return Health{}, err
	}
	table, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return Health{}, fmt.Errorf("expect table output from Lua script, not %s", l.Get(-1).Type())
	}
	health := Health{
		Status:  lua.LVAsString(table.RawGetString("status")),
		Message: lua.LVAsString(table.RawGetString("message")),
	}
	if !validStatuses[health.Status] {
		return Health{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return health, nil
}

// toLua converts decoded JSON the way Argo CD's decodeValue does.
func toLua(l *lua.LState, value interface{}) lua.LValue {
	switch v := value.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(float64(v))
	case []interface{}:
		t := l.NewTable()
		for _, item := range v {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]interface{}:
		t := l.NewTable()
		for key, item := range v {
			t.RawSetString(key, toLua(l, item))
		}
		return t
	default:
		return lua.LNil
	}
}

type testFile struct {
	Tests []struct {
		HealthStatus Health `json:"healthStatus"`
		InputPath    string `json:"inputPath"`
	} `json:"tests"`
}

func runTests(script, path string, openLibs bool) int {
	var file testFile
	if err := yaml.Unmarshal([]byte(readFile(path)), &file); err != nil {
		fail("%s: %v", path, err)
	}
	failed := 0
	for _, test := range file.Tests {
		input := filepath.Join(filepath.Dir(path), test.InputPath)
		f, err := os.Open(input)
		if err != nil {
			fail("%v", err)
		}
		got, err := runHealth(script, readObject(f), openLibs)
		_ = f.Close()
		if err != nil {
			fmt.Printf("FAIL %s: %v\n", test.InputPath, err)
			failed++
			continue
		}
		if got != test.HealthStatus {
			fmt.Printf("FAIL %s: got %+v, want %+v\n", test.InputPath, got, test.HealthStatus)
			failed++
			continue
		}
		fmt.Printf("ok   %s: %s\n", test.InputPath, got.Status)
	}
	fmt.Printf("%d passed, %d failed\n", len(file.Tests)-failed, failed)
	if failed > 0 || len(file.Tests) == 0 {
		return 1
	}
	return 0
}

func readObject(r io.Reader) *unstructured.Unstructured {
	data, err := io.ReadAll(r)
	if err != nil {
		fail("%v", err)
	}
	// Through JSON, so that integers stay int64 as the API machinery expects.
	asJSON, err := yaml.YAMLToJSON(data)
	if err != nil {
		fail("the object is not YAML or JSON: %v", err)
	}
	object := &unstructured.Unstructured{}
	if err := object.UnmarshalJSON(asJSON); err != nil {
		fail("the object is not a Kubernetes object: %v", err)
	}
	return object
}

func readFile(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	return string(data)
}

func printJSON(v interface{}) {
	out, _ := json.Marshal(v)
	fmt.Println(string(out))
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(2)
}
