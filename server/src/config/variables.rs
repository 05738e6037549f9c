//! The environment variables this server reads, and the ones with its prefixes it does not: a
//! misspelled `OAUTH_AUDIANCE` would otherwise be ignored without a word, and the server would run
//! with the default it was meant to replace.

use clap::CommandFactory as _;

use super::Args;

/// A variable with one of our prefixes (`OAUTH_`, `MCP_`) that no setting reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnknownVariable {
    /// The name as set.
    pub(crate) name: String,
    /// The known variable it most likely means, when one is close.
    pub(crate) suggestion: Option<String>,
}

/// The variables among `names` that carry our prefixes but that no setting reads (nor one of the
/// programs that share them, such as the demo's and the example clients'), each with the closest
/// known name. `names` is passed in (by [`crate::run`], from the environment after `.env` is
/// loaded) so that nothing below it reads the environment.
pub(crate) fn unknown_variables<I, S>(names: I) -> Vec<UnknownVariable>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let known: Vec<String> = Args::command()
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .collect();
    let mut unknown: Vec<UnknownVariable> = names
        .into_iter()
        .filter(|name| {
            let name = name.as_ref();
            PREFIXES.iter().any(|prefix| name.starts_with(prefix))
                && !known.iter().any(|k| k == name)
                && !OTHER_PROGRAMS.contains(&name)
        })
        .map(|name| {
            let name = name.as_ref().to_owned();
            let suggestion = closest(&name, &known).map(str::to_owned);
            UnknownVariable { name, suggestion }
        })
        .collect();
    unknown.sort_by(|a, b| a.name.cmp(&b.name));
    unknown
}

/// The known name at the smallest edit distance (transpositions count once), if it is close
/// enough to be a typo rather than another program's variable.
fn closest<'a>(name: &str, known: &'a [String]) -> Option<&'a str> {
    known
        .iter()
        .map(|candidate| (strsim::damerau_levenshtein(name, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= typo_distance(candidate))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.as_str())
}

/// A third of the part after the prefix, at least 1 and at most [`MAX_TYPO_DISTANCE`]:
/// `OAUTH_ISSUR` is a typo of `OAUTH_ISSUER`, `MCP_DEBUG` is not one of `MCP_STATELESS`.
fn typo_distance(candidate: &str) -> usize {
    let tail = PREFIXES
        .iter()
        .find_map(|prefix| candidate.strip_prefix(prefix))
        .unwrap_or(candidate);
    (tail.len() / 3).clamp(1, MAX_TYPO_DISTANCE)
}

/// The prefixes of our variables: anything else in the environment is none of our business.
const PREFIXES: [&str; 2] = ["OAUTH_", "MCP_"];

/// Variables with our prefixes read by programs that often share an environment or a `.env`
/// with the server: the example clients (`server/examples/`) and the MCP Inspector.
const OTHER_PROGRAMS: [&str; 6] = [
    "MCP_SERVER_URL",
    "MCP_CLIENT_ID",
    "MCP_CLIENT_SECRET",
    "MCP_CLIENT_SCOPES",
    "MCP_CLIENT_RESOURCE",
    "MCP_INSPECTOR_API_TOKEN",
];

/// The largest edit distance still taken for a typo.
const MAX_TYPO_DISTANCE: usize = 3;

#[cfg(test)]
mod tests {
    use super::*;

    /// A misspelled variable is reported with the name it most likely means.
    #[test]
    fn a_misspelled_variable_is_reported_with_the_closest_known_name() {
        let unknown = unknown_variables(["OAUTH_AUDIANCE", "OAUTH_ISSUER", "PATH"]);
        assert_eq!(
            unknown,
            [UnknownVariable {
                name: "OAUTH_AUDIANCE".into(),
                suggestion: Some("OAUTH_AUDIENCE".into()),
            }]
        );
        assert_eq!(
            unknown_variables(["MCP_STATLESS"])[0].suggestion.as_deref(),
            Some("MCP_STATELESS")
        );
        assert_eq!(
            unknown_variables(["OAUTH_JWKS_URL"])[0]
                .suggestion
                .as_deref(),
            Some("OAUTH_JWKS_URI")
        );
    }

    /// An unknown variable close to no known one is still reported, without a guess.
    #[test]
    fn an_unknown_variable_far_from_every_known_one_gets_no_suggestion() {
        assert_eq!(
            unknown_variables(["MCP_DEBUG"]),
            [UnknownVariable {
                name: "MCP_DEBUG".into(),
                suggestion: None,
            }]
        );
    }

    /// Every setting's variable, other prefixes and the example clients' variables are known.
    #[test]
    fn known_and_foreign_variables_are_not_reported() {
        let known: Vec<String> = Args::command()
            .get_arguments()
            .filter_map(|arg| arg.get_env())
            .map(|env| env.to_string_lossy().into_owned())
            .collect();
        assert!(known.len() > 40, "{known:?}");
        assert!(unknown_variables(&known).is_empty());
        assert!(unknown_variables(OTHER_PROGRAMS).is_empty());
        assert!(unknown_variables(["HOME", "RUST_LOG", "LOG_FORMAT", "OAUTHX"]).is_empty());
    }
}
