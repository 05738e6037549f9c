//! Every algorithm an issuer can be configured with produces tokens that verify against its JWKS.

use mock_idp::{AccessTokenSpec, Algorithm};

use crate::harness::{DEMO_AUDIENCE, builder, demo_token, fetch_jwks, inspect, verify};

#[tokio::test]
async fn tokens_of_each_algorithm_verify_with_jsonwebtoken_against_the_served_jwks() {
    for alg in Algorithm::ALL {
        let idp = builder().algorithm(alg).start().await.unwrap();
        let issuer = idp.issuer();
        let jwks = fetch_jwks(&issuer.jwks_uri()).await;
        assert_eq!(jwks["keys"][0]["alg"], alg.as_str());
        let from_endpoint = demo_token(&issuer.token_endpoint()).await;
        let minted = issuer
            .mint(&AccessTokenSpec::user("alice").scope(["mcp:tools"]))
            .await
            .unwrap();
        for token in [from_endpoint, minted] {
            let (header, _) = inspect(&token);
            assert_eq!(header["alg"], alg.as_str());
            verify(&token, &jwks, issuer.url(), DEMO_AUDIENCE)
                .unwrap_or_else(|e| panic!("{alg}: {e}"));
        }
    }
}
