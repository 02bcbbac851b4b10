package aspectipc

// ProtocolVersion is the wire protocol version this SDK speaks (PROTOCOL.md section 10).
const ProtocolVersion = 1

// SDKName is the value this SDK sends as $/ready.params.sdk.
const SDKName = "aspect-ipc-go"

// SDKVersion is the version of this SDK, sent as $/ready.params.sdkVersion.
const SDKVersion = "0.1.0"

// SDKLanguage is the value this SDK sends as $/ready.params.language.
const SDKLanguage = "go"
