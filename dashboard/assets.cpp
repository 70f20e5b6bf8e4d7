#include "dashboard/assets.h"

namespace perfwatch::dashboard {

void install_assets(Router& router) {
  for (const Asset& asset : embedded_assets()) {
    auto serve = [asset](const Request&) {
      Response r = Response::bytes(std::string(asset.content_type), std::string(asset.body));
      // Scripts only from this origin, nothing framed: the page shows symbol names from the profiled code.
      r.headers.emplace_back("Content-Security-Policy",
                             "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'");
      return r;
    };
    router.add("GET", asset.path, Router::Access::open, serve);
    if (asset.path == "/index.html") router.add("GET", "/", Router::Access::open, serve);
  }
}

}  // namespace perfwatch::dashboard
