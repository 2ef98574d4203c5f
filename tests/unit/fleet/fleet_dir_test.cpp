// `fleet init`'s directory: files, modes, the broker configuration and the ACL it writes.
#include "hearth/fleet/fleet_dir.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "hearth/fleet/pki.h"
#include "shared_data.h"

namespace hearth::fleet {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST(FleetDir, EndpointParsing) {
  auto e = parse_endpoint("mqtts://broker.plant.local:18883", "mqtts", 8883);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->host, "broker.plant.local");
  EXPECT_EQ(e->port, 18883);
  auto d = parse_endpoint("https://[::1]", "https", 8443);
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->host, "::1");
  EXPECT_EQ(d->port, 8443);
  EXPECT_EQ(d->to_string(), "https://[::1]:8443");
  EXPECT_FALSE(parse_endpoint("http://x:1", "https", 1).ok());
  EXPECT_FALSE(parse_endpoint("https://x:99999", "https", 1).ok());
  EXPECT_FALSE(parse_endpoint("https://x y:1", "https", 1).ok());
  EXPECT_FALSE(parse_endpoint("https://:1", "https", 1).ok());
}

TEST(FleetDir, BrokerUrlListsForAClusterAndOneUrlStillWorks) {
  auto one = parse_endpoints("mqtts://127.0.0.1:8883", "mqtts", 8883);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ(endpoints_to_string(*one), "mqtts://127.0.0.1:8883");
  auto three = parse_endpoints("mqtts://a.plant:1883, mqtts://[::1]:2883 ,mqtts://10.0.0.3", "mqtts", 8883);
  ASSERT_TRUE(three.ok()) << three.status().to_string();
  ASSERT_EQ(three->size(), 3u);
  EXPECT_EQ((*three)[0].host, "a.plant");
  EXPECT_EQ((*three)[1].host, "::1");
  EXPECT_EQ((*three)[1].port, 2883);
  EXPECT_EQ((*three)[2].port, 8883);
  EXPECT_EQ(endpoints_to_string(*three), "mqtts://a.plant:1883,mqtts://[::1]:2883,mqtts://10.0.0.3:8883");
  EXPECT_FALSE(parse_endpoints("", "mqtts", 8883).ok());
  EXPECT_FALSE(parse_endpoints("mqtts://a:1,", "mqtts", 8883).ok());
  EXPECT_FALSE(parse_endpoints("mqtts://a:1,,mqtts://b:2", "mqtts", 8883).ok());
  EXPECT_FALSE(parse_endpoints("mqtts://a:1,https://b:2", "mqtts", 8883).ok());
  std::string many;
  for (int i = 0; i < 17; ++i) many += (i ? "," : "") + std::string("mqtts://h:") + std::to_string(1000 + i);
  EXPECT_FALSE(parse_endpoints(many, "mqtts", 8883).ok());

  // A fleet made with three brokers: fleet.json keeps the list, the broker's certificate answers
  // to every host, and Mosquitto's configuration is the first one's.
  auto tmp = testing::make_temp_dir("hearth-fleet-dir-list");
  FleetInitOptions o;
  o.name = "plant";
  o.broker_url = "mqtts://127.0.0.1:18883,mqtts://10.1.2.3:18884,mqtts://broker-3.plant:18885";
  auto f = init_fleet((tmp / "fleet").string(), o);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  auto loaded = load_fleet((tmp / "fleet").string());
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  ASSERT_EQ(loaded->brokers.size(), 3u);
  EXPECT_EQ(loaded->broker.port, 18883);
  EXPECT_EQ(loaded->broker_urls(), o.broker_url);
  const std::string pem = slurp((tmp / "fleet/broker/broker.crt").string());
  ASSERT_FALSE(pem.empty());
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
  ASSERT_TRUE(cert);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "10.1.2.3", 0), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "broker-3.plant", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  const std::string conf = slurp(f->mosquitto_conf_path());
  EXPECT_NE(conf.find("listener 18883 127.0.0.1"), std::string::npos) << conf;

  // nats_server_conf: each listed node may touch its own subjects only.
  NatsServerOptions n;
  n.name = "n1";
  n.mqtt_port = 18883;
  n.routes = {"127.0.0.1:6223", "127.0.0.1:6224"};
  n.store_dir = "/var/lib/nats/js";
  std::string nats = nats_server_conf(*loaded, n, {"edge-1", "bad id"});
  EXPECT_NE(nats.find("user: \"CN=edge-1\""), std::string::npos) << nats;
  EXPECT_NE(nats.find("\"hearth.v1.plant.nodes.edge-1.reported\""), std::string::npos) << nats;
  EXPECT_NE(nats.find("subscribe: [\"hearth.v1.plant.nodes.edge-1.desired\", \"$MQTT.sub.>\"]"), std::string::npos)
      << nats;
  EXPECT_EQ(nats.find("bad id"), std::string::npos) << nats;
  EXPECT_NE(nats.find("routes: [\"nats-route://127.0.0.1:6223\", \"nats-route://127.0.0.1:6224\"]"), std::string::npos)
      << nats;
  EXPECT_NE(nats.find("verify_and_map: true"), std::string::npos);
  EXPECT_NE(nats.find("stream_replicas: 3"), std::string::npos);
  std::error_code ec;
  std::filesystem::remove_all(tmp, ec);
}

TEST(FleetDir, InitWritesAWholeFleetAndRefusesToOverwrite) {
  auto tmp = testing::make_temp_dir("hearth-fleet-dir");
  std::string dir = (tmp / "fleet").string();
  FleetInitOptions o;
  o.name = "plant-7";
  o.broker_url = "mqtts://127.0.0.1:18883";
  auto f = init_fleet(dir, o);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ(f->name, "plant-7");
  EXPECT_EQ(f->broker.port, 18883);

  struct stat st {};
  ASSERT_EQ(stat(f->ca_key_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat(f->admin_token_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat(f->desired_key_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // The controller's and the broker's certificates chain to the fleet CA.
  std::string ca = slurp(f->ca_cert_path());
  auto cn = verify_certificate(slurp(f->controller_cert_path()), ca);
  ASSERT_TRUE(cn.ok()) << cn.status().to_string();
  EXPECT_EQ(*cn, kControllerIdentity);
  auto broker_cn = verify_certificate(slurp(dir + "/broker/broker.crt"), ca);
  ASSERT_TRUE(broker_cn.ok());
  EXPECT_EQ(*certificate_sha256(ca), f->ca_sha256);

  std::string conf = slurp(f->mosquitto_conf_path());
  EXPECT_NE(conf.find("listener 18883 127.0.0.1"), std::string::npos) << conf;
  EXPECT_NE(conf.find("require_certificate true"), std::string::npos);
  EXPECT_NE(conf.find("use_identity_as_username true"), std::string::npos);
  EXPECT_NE(conf.find("allow_anonymous false"), std::string::npos);
  EXPECT_NE(conf.find("acl_file " + f->acl_path()), std::string::npos);
  std::string acl = slurp(f->acl_path());
  EXPECT_EQ(acl, mosquitto_acl("plant-7"));
  EXPECT_NE(acl.find("pattern read hearth/v1/plant-7/nodes/%u/desired"), std::string::npos);
  EXPECT_EQ(acl.find("pattern write hearth/v1/plant-7/nodes/%u/desired"), std::string::npos);

  auto loaded = load_fleet(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  EXPECT_EQ(loaded->ca_sha256, f->ca_sha256);
  EXPECT_EQ(loaded->desired_key_id, f->desired_key_id);
  EXPECT_EQ(loaded->broker.to_string(), "mqtts://127.0.0.1:18883");

  auto again = init_fleet(dir, o);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(slurp(f->ca_cert_path()), ca);  // untouched
  std::filesystem::remove_all(tmp);
}

TEST(FleetDir, BadNamesAndUrlsAreRefused) {
  auto tmp = testing::make_temp_dir("hearth-fleet-dir");
  FleetInitOptions o;
  o.name = "Plant 7";
  EXPECT_FALSE(init_fleet((tmp / "a").string(), o).ok());
  o.name = "ok";
  o.broker_url = "mqtt://127.0.0.1:1883";  // plain MQTT is not offered
  auto r = init_fleet((tmp / "b").string(), o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--broker-url"), std::string::npos);
  EXPECT_FALSE(load_fleet((tmp / "nothing").string()).ok());
  std::filesystem::remove_all(tmp);
}

}  // namespace
}  // namespace hearth::fleet
