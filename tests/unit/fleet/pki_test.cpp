// The fleet's X.509 identities, checked with OpenSSL's own verifier (pki.cpp builds them;
// verify_certificate runs X509_verify_cert) and with the openssl CLI where it adds a view.
#include "hearth/fleet/pki.h"

#include <gtest/gtest.h>

namespace hearth::fleet {
namespace {

TEST(FleetPki, NodeIds) {
  EXPECT_TRUE(valid_node_id("edge-01"));
  EXPECT_TRUE(valid_node_id(std::string(63, 'a')));
  EXPECT_FALSE(valid_node_id(std::string(64, 'a')));
  EXPECT_FALSE(valid_node_id(""));
  EXPECT_FALSE(valid_node_id("-edge"));
  EXPECT_FALSE(valid_node_id("Edge"));
  EXPECT_FALSE(valid_node_id("edge/1"));
  EXPECT_FALSE(valid_node_id("edge+"));
  EXPECT_FALSE(valid_node_id("edge#"));
  EXPECT_FALSE(valid_node_id("hearth-controller"));
}

TEST(FleetPki, CsrEnrollmentIssuesACertificateForTheGivenId) {
  auto ca = make_ca("test CA", 30);
  ASSERT_TRUE(ca.ok()) << ca.status().to_string();
  // The node asks to be "hearth-controller"; the controller signs with the id it chose.
  auto node = make_key_and_csr("hearth-controller");
  ASSERT_TRUE(node.ok());
  auto cert = issue_from_csr(*ca, node->csr_pem, "edge-07", 30);
  ASSERT_TRUE(cert.ok()) << cert.status().to_string();
  auto cn = verify_certificate(*cert, ca->cert_pem);
  ASSERT_TRUE(cn.ok()) << cn.status().to_string();
  EXPECT_EQ(*cn, "edge-07");
  EXPECT_FALSE(issue_from_csr(*ca, node->csr_pem, "hearth-controller", 30).ok());
  EXPECT_FALSE(issue_from_csr(*ca, node->csr_pem, "UPPER", 30).ok());
}

TEST(FleetPki, RefusesBrokenCsrsAndForeignCertificates) {
  auto ca = make_ca("test CA", 30);
  auto other_ca = make_ca("other CA", 30);
  ASSERT_TRUE(ca.ok() && other_ca.ok());
  auto node = make_key_and_csr("edge-01");
  ASSERT_TRUE(node.ok());
  // A CSR whose signature no longer matches its content.
  std::string tampered = node->csr_pem;
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(issue_from_csr(*ca, tampered, "edge-01", 30).ok());
  EXPECT_FALSE(issue_from_csr(*ca, "not a csr", "edge-01", 30).ok());
  EXPECT_FALSE(issue_from_csr(*ca, std::string(100 << 10, 'A'), "edge-01", 30).ok());
  // A certificate from another CA does not verify against ours.
  auto foreign = issue_with_new_key(*other_ca, {"edge-01", {}, {}, CertUsage::kClient, 30});
  ASSERT_TRUE(foreign.ok());
  auto r = verify_certificate(foreign->cert_pem, ca->cert_pem);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnauthenticated);
}

TEST(FleetPki, FingerprintIsStableAndDistinct) {
  auto a = make_ca("a", 30);
  auto b = make_ca("b", 30);
  ASSERT_TRUE(a.ok() && b.ok());
  auto fa = certificate_sha256(a->cert_pem);
  ASSERT_TRUE(fa.ok());
  EXPECT_EQ(fa->size(), 64u);
  EXPECT_EQ(*fa, *certificate_sha256(a->cert_pem));
  EXPECT_NE(*fa, *certificate_sha256(b->cert_pem));
  auto t1 = random_hex(32);
  auto t2 = random_hex(32);
  ASSERT_TRUE(t1.ok() && t2.ok());
  EXPECT_EQ(t1->size(), 64u);
  EXPECT_NE(*t1, *t2);
}

}  // namespace
}  // namespace hearth::fleet
