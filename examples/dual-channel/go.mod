module github.com/aspect-ipc/aspect-ipc/examples/dual-channel

go 1.22

require github.com/aspect-ipc/aspect-ipc/workers-go v0.0.0

// Built from this repository; go.work at the root lists the same module.
replace github.com/aspect-ipc/aspect-ipc/workers-go => ../../workers-go
