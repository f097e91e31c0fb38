// perflab subject: goroutines, built at run time with the user's own Go toolchain
// (perflab/claims/_subjects.py caches the binary under $XDG_CACHE_HOME/perflab/go/),
// because what it measures is that runtime. Standard library only.
//
// It speaks the kernel protocol (docs/kernels.md): --key=value options, one JSON line
// on stdout, exit 77 with a one-line reason when something cannot run here.
//
//	--variant=goroutine            ns per goroutine switch: two goroutines ping-pong over
//	                               unbuffered channels with GOMAXPROCS=1, so every hand-off
//	                               is a switch inside the runtime on one thread (a switch is
//	                               half a round trip, the channel operations included)
//	--variant=block-chan --n=N     kernel tasks before and while N goroutines are blocked
//	                               receiving from a channel
//	--variant=m-n --compute=C --blocked=B
//	                               kernel tasks over time while C goroutines compute, then
//	                               while B goroutines are blocked in read(2) on a pipe
//
// Tasks are counted in /proc/self/task (one entry per kernel task, proc(5)).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

const controlThreads = 4

func fail(code int, format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "green: "+format+"\n", args...)
	os.Exit(code)
}

func countTasks() int {
	entries, err := os.ReadDir("/proc/self/task")
	if err != nil {
		fail(1, "reading /proc/self/task: %v", err)
	}
	return len(entries)
}

// pinAll pins every existing thread of this process to cpu with sched_setaffinity(2);
// threads the runtime starts later inherit the mask of the thread that creates them.
func pinAll(cpu int) {
	if cpu < 0 {
		return
	}
	var mask [16]uint64
	mask[cpu/64] |= 1 << (uint(cpu) % 64)
	entries, err := os.ReadDir("/proc/self/task")
	if err != nil {
		fail(1, "reading /proc/self/task: %v", err)
	}
	for _, e := range entries {
		var tid int
		fmt.Sscanf(e.Name(), "%d", &tid)
		_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid),
			unsafe.Sizeof(mask), uintptr(unsafe.Pointer(&mask[0])))
		if errno != 0 {
			fail(77, "cannot pin to cpu %d: sched_setaffinity: %v", cpu, errno)
		}
	}
}

// ---- the batch protocol (as common.h) ---------------------------------------------------
func timerOverhead() float64 {
	d := make([]float64, 10001)
	for i := range d {
		t0 := time.Now()
		d[i] = float64(time.Since(t0).Nanoseconds())
	}
	return median(d)
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func calibrate(batch func(int) float64, target float64) int {
	batch(1)
	it := 1
	for it < 1<<30 && batch(it) < target {
		it *= 2
	}
	return it
}

var sink int

func emptyBatch(iters int) float64 {
	t0 := time.Now()
	x := 0
	for i := 0; i < iters; i++ {
		x += i
	}
	sink = x
	return float64(time.Since(t0).Nanoseconds())
}

func goroutineSwitch(targetNs float64, batches int) map[string]interface{} {
	runtime.GOMAXPROCS(1)
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
	}()
	batch := func(iters int) float64 {
		t0 := time.Now()
		for i := 0; i < iters; i++ {
			ping <- i
			<-pong
		}
		return float64(time.Since(t0).Nanoseconds())
	}
	timer := timerOverhead()
	eit := calibrate(emptyBatch, targetNs)
	emptyBatch(eit)
	ev := make([]float64, batches)
	for b := range ev {
		ev[b] = (emptyBatch(eit) - timer) / float64(eit)
	}
	loop := median(ev)
	iters := calibrate(batch, targetNs)
	batch(iters)
	perOp := make([]float64, batches)
	for b := range perOp {
		perOp[b] = ((batch(iters)-timer)/float64(iters) - loop) / 2 // a round trip is two switches
	}
	return map[string]interface{}{
		"iters": iters, "per_op_ns": perOp, "timer_overhead_ns": timer, "loop_overhead_ns": loop,
		"switches_per_iter": 2, "gomaxprocs": runtime.GOMAXPROCS(0),
		"tasks": countTasks(),
	}
}

// ---- subject: goroutines blocked on a channel --------------------------------------------
func blockChan(n int) map[string]interface{} {
	before := countTasks()
	var started sync.WaitGroup
	ch := make(chan struct{})
	started.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			<-ch
		}()
	}
	started.Wait()
	during := make([]int, 5)
	for s := range during {
		time.Sleep(10 * time.Millisecond)
		during[s] = countTasks()
	}
	goroutines := runtime.NumGoroutine()
	// positive control of the probe: goroutines locked to their threads and blocked in
	// read(2) each hold a kernel task of their own, which the same listing must show
	withControl, tids, seen, release := holdThreads(controlThreads)
	release()
	close(ch)
	return map[string]interface{}{
		"goroutines_started": n, "goroutines_alive": goroutines, "tasks_before": before,
		"tasks_during": during, "sample_interval_ms": 10,
		"control_threads_started": controlThreads, "tasks_with_control_threads": withControl,
		"tasks_before_control": during[len(during)-1],
		"control_tids": tids, "control_tids_seen": seen,
	}
}

// holdThreads starts k goroutines that lock their OS thread (runtime.LockOSThread: no
// other goroutine runs on it) and block in read(2). Once all are blocked it lists
// /proc/self/task and returns the task count, the TIDs the goroutines got from gettid(2),
// how many of those the listing shows, and a function that releases them. The TIDs, not
// the count's growth, are the control: the runtime may put a locked goroutine on a
// thread it had already started and parked, so the count can grow by less than k.
func holdThreads(k int) (int, []int, int, func()) {
	var fds [2]int
	if err := syscall.Pipe(fds[:]); err != nil {
		fail(1, "pipe: %v", err)
	}
	var ready sync.WaitGroup
	var mu sync.Mutex
	var tids []int
	ready.Add(k)
	for i := 0; i < k; i++ {
		go func() {
			runtime.LockOSThread()
			mu.Lock()
			tids = append(tids, syscall.Gettid())
			mu.Unlock()
			ready.Done()
			var b [1]byte
			syscall.Read(fds[0], b[:])
		}()
	}
	ready.Wait()
	time.Sleep(50 * time.Millisecond)
	entries, err := os.ReadDir("/proc/self/task")
	if err != nil {
		fail(1, "reading /proc/self/task: %v", err)
	}
	listed := map[string]bool{}
	for _, e := range entries {
		listed[e.Name()] = true
	}
	seen := 0
	for _, tid := range tids {
		if listed[strconv.Itoa(tid)] {
			seen++
		}
	}
	return len(entries), tids, seen, func() {
		syscall.Write(fds[1], make([]byte, k))
	}
}

// ---- subject: M:N scheduling -------------------------------------------------------------
type sample struct {
	Ms    float64 `json:"ms"`
	Tasks int     `json:"tasks"`
}

func sampleFor(d, every time.Duration) ([]sample, int) {
	var out []sample
	peak := 0
	t0 := time.Now()
	for time.Since(t0) < d {
		n := countTasks()
		if n > peak {
			peak = n
		}
		out = append(out, sample{float64(time.Since(t0).Microseconds()) / 1000, n})
		time.Sleep(every)
	}
	return out, peak
}

func mn(compute, blocked int) map[string]interface{} {
	before := countTasks()
	// Phase 1: goroutines that only compute (no system calls): the runtime runs them on
	// at most GOMAXPROCS threads at once (runtime/proc.go: one M per P running Go code).
	stop := make(chan struct{})
	var done sync.WaitGroup
	done.Add(compute)
	for i := 0; i < compute; i++ {
		go func(seed int) {
			defer done.Done()
			x := seed
			for {
				for j := 0; j < 10000; j++ {
					x = x*1103515245 + 12345
				}
				select {
				case <-stop:
					sink += x & 1
					return
				default:
				}
			}
		}(i)
	}
	computing, computePeak := sampleFor(200*time.Millisecond, 5*time.Millisecond)
	close(stop)
	done.Wait()
	afterCompute := countTasks()

	// Phase 2: goroutines blocked in read(2) on a blocking pipe: each holds its thread in
	// the kernel; sysmon takes its P away (retake/handoffp in runtime/proc.go) and a new
	// thread runs the goroutines still waiting to run.
	var fds [2]int
	if err := syscall.Pipe(fds[:]); err != nil {
		fail(1, "pipe: %v", err)
	}
	var entered sync.WaitGroup
	entered.Add(blocked)
	var returned sync.WaitGroup
	returned.Add(blocked)
	for i := 0; i < blocked; i++ {
		go func() {
			defer returned.Done()
			entered.Done()
			var b [1]byte
			syscall.Read(fds[0], b[:])
		}()
	}
	blocking, blockPeak := sampleFor(300*time.Millisecond, 5*time.Millisecond)
	entered.Wait()
	syscall.Write(fds[1], make([]byte, blocked))
	returned.Wait()
	return map[string]interface{}{
		"gomaxprocs": runtime.GOMAXPROCS(0), "tasks_before": before,
		"computing_goroutines": compute, "computing": computing, "computing_peak": computePeak,
		"tasks_after_computing": afterCompute,
		"blocked_goroutines": blocked, "blocking": blocking, "blocking_peak": blockPeak,
		"tasks_after_release": countTasks(),
	}
}

func main() {
	variant := flag.String("variant", "", "goroutine | block-chan | m-n")
	cpu := flag.Int("cpu", -1, "CPU to pin to (-1: none)")
	target := flag.Float64("target-ns", 1e6, "batch length to calibrate to")
	batches := flag.Int("batches", 5, "timed batches")
	n := flag.Int("n", 10000, "goroutines blocked on a channel (block-chan)")
	compute := flag.Int("compute", 1000, "computing goroutines (m-n)")
	blocked := flag.Int("blocked", 100, "goroutines blocked in read(2) (m-n)")
	flag.CommandLine.SetOutput(os.Stderr)
	flag.Usage = func() { fail(2, "usage: green --variant=goroutine|block-chan|m-n [--key=value ...]") }
	flag.Parse()
	if *batches < 1 || *batches > 1000 || *target < 1000 || *n < 1 || *compute < 1 || *blocked < 1 {
		fail(2, "an option is out of range")
	}
	out := map[string]interface{}{}
	switch *variant {
	case "goroutine":
		pinAll(*cpu)
		out = goroutineSwitch(*target, *batches)
	case "block-chan":
		out = blockChan(*n)
	case "m-n":
		out = mn(*compute, *blocked)
	default:
		fail(2, "unknown variant %q", *variant)
	}
	out["kernel"] = "green"
	out["variant"] = *variant
	out["cpu"] = *cpu
	out["go"] = runtime.Version()
	out["gomaxprocs"] = runtime.GOMAXPROCS(0)
	line, err := json.Marshal(out)
	if err != nil {
		fail(1, "json: %v", err)
	}
	fmt.Println(string(line))
}
