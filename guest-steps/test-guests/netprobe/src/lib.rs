//! Tries to reach the network: a TCP connection to a port the test listens on, a UDP datagram to
//! it, a DNS lookup. A gate has no network, so every attempt must fail. Kept apart from `hostile`
//! because it imports wasi:sockets, which a host may choose not to link at all (then this guest
//! does not instantiate, which is also containment).
use greenlight_gate::{Gate, GateError, GateResult, Input, Verdict};
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

#[derive(serde::Deserialize)]
struct Params {
    port: String,
}

struct NetProbe;

impl Gate for NetProbe {
    fn verify(input: Input) -> GateResult {
        let params: Params = input.params()?;
        let port: u16 = params.port.parse().map_err(|e| GateError::new(format!("bad port: {e}")))?;
        let target = format!("127.0.0.1:{port}");
        let mut escaped = Vec::new();
        let mut contained = Vec::new();

        let addr = target.parse().expect("a socket address");
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(mut s) => {
                let _ = s.write_all(b"ESCAPED over TCP\n");
                escaped.push(format!("TCP connect to {target}"))
            }
            Err(e) => contained.push(format!("TCP connect to {target}: {e}")),
        }
        match UdpSocket::bind("0.0.0.0:0") {
            Ok(sock) => match sock.send_to(b"ESCAPED over UDP\n", &target) {
                Ok(n) => escaped.push(format!("UDP send of {n} bytes to {target}")),
                Err(e) => contained.push(format!("UDP send to {target}: {e}")),
            },
            Err(e) => contained.push(format!("UDP bind: {e}")),
        }
        for name in ["localhost:80", "example.com:443"] {
            match name.to_socket_addrs() {
                Ok(addrs) => {
                    let addrs: Vec<_> = addrs.collect();
                    if addrs.is_empty() {
                        contained.push(format!("resolve {name}: no addresses"));
                    } else {
                        escaped.push(format!("resolved {name} to {addrs:?}"));
                    }
                }
                Err(e) => contained.push(format!("resolve {name}: {e}")),
            }
        }

        if escaped.is_empty() {
            Ok(Verdict::pass(format!("contained: {}", contained.join("; "))))
        } else {
            Ok(Verdict::fail(format!("ESCAPED: {}", escaped.join("; "))).with_evidence(contained.join("\n")))
        }
    }
}

greenlight_gate::export_gate!(NetProbe);
