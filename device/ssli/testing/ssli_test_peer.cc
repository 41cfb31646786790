#include "device/ssli/testing/ssli_test_peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>

#include <fmt/format.h>

#include "core/file_io.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "engine/ports.h"

namespace idevid::testing {
namespace {

constexpr const char* kNotAfter = "20991231235959Z";

// Serves TLS on 127.0.0.1 (port written to argv[4]) and answers each request per argv[1].
constexpr const char* kMisbehavingServer = R"PY(
import base64, os, socket, ssl, sys, time
mode, cert, key, port_file = sys.argv[1:5]
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(8)
with open(port_file + ".tmp", "w") as f:
    f.write(str(listener.getsockname()[1]))
os.rename(port_file + ".tmp", port_file)
while True:
    connection, _ = listener.accept()
    try:
        tls = context.wrap_socket(connection, server_side=True)
        request = b""
        while b"\r\n\r\n" not in request:
            data = tls.recv(4096)
            if not data:
                break
            request += data
        if mode == "forbidden":
            tls.sendall(b'HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n\r\n'
                        b'{"verdict": "rejected", "reason": "serial CW1 is not in the inventory\\u001b[2J"}')
        elif mode == "unavailable":
            tls.sendall(b'HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 5\r\n\r\n'
                        b'{"verdict": "unavailable", "reason": "the ledger cannot be asked about serial CW1"}')
        elif mode == "close":
            pass
        elif mode == "challenge":
            body = (b'{"version": 1, "type": "attestation-challenge", "nonce": "' +
                    base64.b64encode(os.urandom(32)) + b'", "pcrs": "sha256:0,1,2,3,4,5,6,7", '
                    b'"exporter": {"label": "EXPORTER-idevid-attestation", "length": 32}}')
            tls.sendall(b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: IDevID-Attestation version="1"\r\n'
                        b'Content-Type: application/json\r\nContent-Length: %d\r\n\r\n' % len(body) + body)
            rest = b""
            try:
                while len(rest) < 4096:
                    data = tls.recv(4096)
                    if not data:
                        break
                    rest += data
            except Exception:
                pass
            print("after the challenge:", repr(rest[:40]), flush=True)
        elif mode == "huge":
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
            chunk = b"x" * 65536
            for _ in range(800):
                tls.sendall(chunk)
        else:
            answer = b'HTTP/1.1 200 OK\r\n\r\n{"verdict": "accepted"}' + b" " * 600
            for byte in answer:
                tls.sendall(bytes([byte]))
                time.sleep(0.2)
        tls.close()
    except Exception as e:
        print("connection ended:", e, flush=True)
    finally:
        connection.close()
)PY";

}  // namespace

Result<TestCa> TestCa::CreateWithServerAndClient(const std::filesystem::path& dir) {
  IDEVID_ASSIGN_OR_RETURN(TestCa ca, Create(dir));
  IDEVID_TRY(ca.IssueServer("server", "IP:127.0.0.1"));
  IDEVID_TRY(ca.IssueClient("client"));
  return ca;
}

Result<TestCa> TestCa::Create(const std::filesystem::path& dir, const std::string& ca_name) {
  TestCa ca;
  ca.dir_ = dir;
  IDEVID_ASSIGN_OR_RETURN(ca.key_, GenerateKey(KeyAlgorithm::kEccP256));
  IDEVID_ASSIGN_OR_RETURN(ca.cert_, IssueCertificate({.subject = {{"CN", "SSL-I test CA"}},
                                                      .not_after = kNotAfter,
                                                      .extensions = {{"basicConstraints", "critical,CA:TRUE"},
                                                                     {"keyUsage", "critical,keyCertSign"}}},
                                                     *ca.key_, nullptr, *ca.key_));
  ca.certificate_ = dir / (ca_name + ".pem");
  IDEVID_ASSIGN_OR_RETURN(std::string pem, CertificatePem(*ca.cert_));
  IDEVID_TRY(WriteFileAtomic(ca.certificate_, pem));
  return ca;
}

Result<void> TestCa::Issue(const std::string& name, const std::string& cn, const std::string& san) const {
  IDEVID_ASSIGN_OR_RETURN(ossl::PKey key, GenerateKey(KeyAlgorithm::kEccP256));
  CertificateSpec spec{.subject = {{"CN", cn}}, .not_after = kNotAfter};
  if (!san.empty()) spec.extensions.push_back({"subjectAltName", san});
  IDEVID_ASSIGN_OR_RETURN(ossl::Cert cert, IssueCertificate(spec, *key, cert_.get(), *key_), "issuing {}",
                          name);
  IDEVID_ASSIGN_OR_RETURN(std::string pem, CertificatePem(*cert));
  IDEVID_TRY(WriteFileAtomic(Pem(name), pem));
  return WritePrivateKeyPem(Key(name), *key);
}

Result<void> TestCa::IssueServer(const std::string& name, const std::string& san) const {
  return Issue(name, name, san);
}

Result<void> TestCa::IssueClient(const std::string& name) const { return Issue(name, name, ""); }

namespace {

// One try at `port`: s_server started and listening there itself, or why not.
Result<TlsPeer> TryOpensslServer(const std::filesystem::path& dir, const std::string& name,
                                 const std::filesystem::path& client_ca,
                                 const std::vector<std::string>& extra, std::uint16_t port) {
  TlsPeer peer{{}, port, dir / fmt::format("s_server-{}-{}.log", port, name)};
  std::vector<std::string> argv = {"openssl", "s_server",
                                   "-accept", fmt::format("127.0.0.1:{}", port),
                                   "-cert",   (dir / (name + ".pem")).string(),
                                   "-key",    (dir / (name + ".key")).string(),
                                   "-www"};
  if (!client_ca.empty()) argv.insert(argv.end(), {"-Verify", "1", "-CAfile", client_ca.string()});
  argv.insert(argv.end(), extra.begin(), extra.end());
  IDEVID_ASSIGN_OR_RETURN(peer.process, ChildProcess::Spawn({.argv = argv, .log = peer.log}),
                          "starting openssl s_server");
  // Our s_server must hold the port: another server that took it would answer the probe too.
  bool listening =
      PollUntil([&] { return peer.process.Ended() || ProcessListensOn(peer.process.pid(), port); },
                std::chrono::seconds(10)) &&
      !peer.process.Ended();
  if (!listening) {
    return PeerError(PeerCode::kTimeout, "openssl s_server did not listen within 10 s: " + LogTail(peer.log));
  }
  return peer;
}

}  // namespace

Result<TlsPeer> StartOpensslServer(const std::filesystem::path& dir, const std::string& name,
                                   const std::filesystem::path& client_ca,
                                   const std::vector<std::string>& extra, std::uint16_t port) {
  if (port != 0) return TryOpensslServer(dir, name, client_ca, extra, port);
  // Ports below the ephemeral range, picked again when another process takes one first.
  Result<TlsPeer> peer = PeerError(PeerCode::kUnreachable, "openssl s_server did not start");
  for (int attempt = 0; attempt < 5 && !peer; ++attempt) {
    IDEVID_ASSIGN_OR_RETURN(std::uint16_t free, FindFreePortPair());
    peer = TryOpensslServer(dir, name, client_ca, extra, free);
  }
  return peer;
}

Result<TlsPeer> StartMisbehavingServer(const std::filesystem::path& dir, const std::string& name,
                                       const std::string& mode) {
  std::filesystem::path script = dir / "misbehaving_server.py";
  std::filesystem::path port_file = dir / fmt::format("{}-server.port", mode);
  IDEVID_TRY(WriteFileAtomic(script, kMisbehavingServer));
  TlsPeer peer{{}, 0, dir / fmt::format("{}-server.log", mode)};
  IDEVID_ASSIGN_OR_RETURN(
      peer.process,
      ChildProcess::Spawn({.argv = {"python3", script.string(), mode, (dir / (name + ".pem")).string(),
                                    (dir / (name + ".key")).string(), port_file.string()},
                           .log = peer.log}),
      "starting the python3 TLS server");
  std::optional<std::string> port;
  if (!PollUntil([&] { return (port = ReadFileText(port_file).value_or("")) && !port->empty(); },
                 std::chrono::seconds(10))) {
    return PeerError(PeerCode::kTimeout,
                     "the python3 TLS server did not listen within 10 s: " + LogTail(peer.log));
  }
  peer.port = static_cast<std::uint16_t>(std::stoi(*port));
  return peer;
}

Result<SilentListener> SilentListener::Start() {
  SilentListener listener;
  IDEVID_ASSIGN_OR_RETURN(listener.fd_, OpenSocket(AF_INET, SOCK_STREAM));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(listener.fd_.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listener.fd_.get(), 8) != 0 ||
      ::getsockname(listener.fd_.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return ErrnoError(errno, "cannot listen on 127.0.0.1");
  }
  listener.port_ = ntohs(address.sin_port);
  return listener;
}

}  // namespace idevid::testing
