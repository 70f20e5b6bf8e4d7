#include "alerts/http_client.h"

#include <Poco/Exception.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/URI.h>

#include <memory>
#include <mutex>

namespace perfwatch::alerts {
namespace {

constexpr std::size_t max_logged_body = 4096;

std::unique_ptr<Poco::Net::HTTPClientSession> session_for(const Poco::URI& uri, const std::string& ca_file) {
  if (uri.getScheme() != "https") return std::make_unique<Poco::Net::HTTPClientSession>(uri.getHost(), uri.getPort());
  static std::once_flag ssl_initialized;
  std::call_once(ssl_initialized, [] { Poco::Net::initializeSSL(); });
  // Verifies the chain and the host name; with ca_file, against that CA only.
  Poco::Net::Context::Ptr context = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "", ca_file,
                                                           Poco::Net::Context::VERIFY_RELAXED, 9, ca_file.empty());
  return std::make_unique<Poco::Net::HTTPSClientSession>(uri.getHost(), uri.getPort(), context);
}

}  // namespace

Result<HttpResponse> PocoHttpClient::post(const HttpRequest& request) {
  try {
    const Poco::URI uri(request.url);
    auto session = session_for(uri, request.ca_file);
    session->setTimeout(Poco::Timespan(std::chrono::duration_cast<std::chrono::microseconds>(request.timeout).count()));
    Poco::Net::HTTPRequest http(Poco::Net::HTTPRequest::HTTP_POST, uri.getPathEtc().empty() ? "/" : uri.getPathEtc(),
                                Poco::Net::HTTPMessage::HTTP_1_1);
    http.setContentType("application/json");
    http.set("User-Agent", "perfwatch");
    for (const auto& [name, value] : request.headers) http.set(name, value);
    http.setContentLength(static_cast<std::streamsize>(request.body.size()));
    session->sendRequest(http) << request.body;
    Poco::Net::HTTPResponse response;
    std::istream& in = session->receiveResponse(response);
    HttpResponse out;
    out.status = static_cast<int>(response.getStatus());
    char buf[1024];
    while (in && out.body.size() < max_logged_body) {
      in.read(buf, sizeof buf);
      out.body.append(buf, static_cast<std::size_t>(in.gcount()));
    }
    if (out.body.size() > max_logged_body) out.body.resize(max_logged_body);
    return out;
  } catch (const Poco::Exception& e) {
    return make_error(e.displayText());
  } catch (const std::exception& e) {
    return make_error(e.what());
  }
}

}  // namespace perfwatch::alerts
