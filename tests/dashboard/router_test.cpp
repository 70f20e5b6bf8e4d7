#include <gtest/gtest.h>

#include "dashboard/router.h"

namespace perfwatch::dashboard {
namespace {

Router make_router(const std::string& token = "") {
  Router r(token);
  r.add("GET", "/healthz", Router::Access::open, [](const Request&) { return Response::json({{"ok", true}}); });
  r.add("GET", "/api/v1/targets/{target}/profile", Router::Access::token, [](const Request& q) {
    return Response::json({{"target", q.params.at("target")}, {"since", q.get("since") ? *q.get("since") : ""}});
  });
  return r;
}

Request get(std::string path, std::string auth = "") {
  Request r;
  r.path = std::move(path);
  r.authorization = std::move(auth);
  return r;
}

TEST(Router, MatchesPatternsAndFillsParams) {
  Router r = make_router();
  Request q = get("/api/v1/targets/demo.v2/profile");
  q.query = {{"since", "1h"}};
  Response resp = r.dispatch(q);
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(nlohmann::json::parse(resp.body), (nlohmann::json{{"target", "demo.v2"}, {"since", "1h"}}));
  EXPECT_EQ(r.dispatch(get("/healthz")).status, 200);
  EXPECT_EQ(r.dispatch(get("/healthz/")).status, 200) << "a trailing slash names the same resource";
}

TEST(Router, UnknownPathsAre404AndOtherMethods405) {
  Router r = make_router();
  Response missing = r.dispatch(get("/api/v1/nothing"));
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(nlohmann::json::parse(missing.body)["error"], "no such endpoint: /api/v1/nothing");
  EXPECT_EQ(r.dispatch(get("/api/v1/targets/x/profile/extra")).status, 404);
  Request post = get("/healthz");
  post.method = "POST";
  EXPECT_EQ(r.dispatch(post).status, 405);
  Request head = get("/healthz");
  head.method = "HEAD";
  EXPECT_EQ(r.dispatch(head).status, 200);
}

TEST(Router, TokenGuardsTokenRoutesOnly) {
  Router r = make_router("s3cret-token");
  EXPECT_EQ(r.dispatch(get("/healthz")).status, 200);
  Response denied = r.dispatch(get("/api/v1/targets/a/profile"));
  EXPECT_EQ(denied.status, 401);
  EXPECT_EQ(denied.headers.at(0).first, "WWW-Authenticate");
  EXPECT_EQ(r.dispatch(get("/api/v1/targets/a/profile", "Bearer wrong-token!")).status, 401);
  EXPECT_EQ(r.dispatch(get("/api/v1/targets/a/profile", "Bearer s3cret-tokenX")).status, 401);
  EXPECT_EQ(r.dispatch(get("/api/v1/targets/a/profile", "Basic s3cret-token")).status, 401);
  EXPECT_EQ(r.dispatch(get("/api/v1/targets/a/profile", "Bearer s3cret-token")).status, 200);
  EXPECT_EQ(r.dispatch(get("/api/v1/targets/a/profile", "bearer s3cret-token")).status, 200) << "the scheme is case-insensitive";
}

TEST(Router, AllowOnlyNamesTheUnknownParameter) {
  Request q = get("/x");
  q.query = {{"since", "1h"}, {"sinse", "2h"}};
  Result<void> r = q.allow_only({"since", "host"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "unknown parameter 'sinse' (known: since, host)");
  q.query.erase("sinse");
  EXPECT_TRUE(q.allow_only({"since", "host"}));
}

TEST(Query, ParsesAndDecodes) {
  auto q = parse_query("since=1h&host=web%2D01&empty=&flag&&name=a+b");
  ASSERT_TRUE(q) << q.error().message;
  EXPECT_EQ(q->at("since"), "1h");
  EXPECT_EQ(q->at("host"), "web-01");
  EXPECT_EQ(q->at("empty"), "");
  EXPECT_EQ(q->at("flag"), "");
  EXPECT_EQ(q->at("name"), "a+b");
}

TEST(Query, RejectsRepeatedKeysAndBadEscapes) {
  auto repeated = parse_query("since=1h&since=2h");
  ASSERT_FALSE(repeated);
  EXPECT_EQ(repeated.error().message, "parameter 'since' given more than once");
  EXPECT_FALSE(parse_query("a=%zz"));
  EXPECT_FALSE(parse_query("a=%4"));
  EXPECT_FALSE(percent_decode("/x%"));
  EXPECT_EQ(*percent_decode("/api/v1/targets/a%20b"), "/api/v1/targets/a b");
}

}  // namespace
}  // namespace perfwatch::dashboard
