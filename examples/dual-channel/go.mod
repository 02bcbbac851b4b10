module github.com/aspect-ipc/aspect-ipc/examples/dual-channel

go 1.22

require github.com/aspect-ipc/aspect-ipc/workers-go v0.0.0

require (
	github.com/vmihailenco/msgpack/v5 v5.4.1 // indirect
	github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
)

// Built from this repository; go.work at the root lists the same module.
replace github.com/aspect-ipc/aspect-ipc/workers-go => ../../workers-go
