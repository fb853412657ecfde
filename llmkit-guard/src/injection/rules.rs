//! The injection rule table, as data: each rule's [`SignalCategory`], name, weight and regex
//! pattern. [`super::scorer`] compiles it once per process; adding a rule is one row here.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The family a rule belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SignalCategory {
    /// "Ignore all previous instructions" and its translations.
    InstructionOverride,
    /// DAN, developer mode, "you have no restrictions", persona switches.
    Jailbreak,
    /// Text pretending to be a system, developer or tool message, or chat-template tokens.
    FakeRole,
    /// Closing the data block the application put the text in, to escape into instructions.
    DelimiterEscape,
    /// Base64, hex or rot13 that decodes to instructions.
    EncodedPayload,
    /// Asking for the system prompt or hidden instructions.
    PromptReveal,
    /// Markdown images or links that would carry data to an outside server.
    Exfiltration,
}

impl SignalCategory {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalCategory::InstructionOverride => "instruction_override",
            SignalCategory::Jailbreak => "jailbreak",
            SignalCategory::FakeRole => "fake_role",
            SignalCategory::DelimiterEscape => "delimiter_escape",
            SignalCategory::EncodedPayload => "encoded_payload",
            SignalCategory::PromptReveal => "prompt_reveal",
            SignalCategory::Exfiltration => "exfiltration",
        }
    }
}

impl fmt::Display for SignalCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `(category, name, weight, pattern)`. Patterns run on folded text, case-insensitively where
/// they say `(?i)`. Keep each bounded (`{0,40}` gaps, never `.*`) so matching stays linear
/// and local to a phrase.
pub(crate) const RULES: &[(SignalCategory, &str, f32, &str)] = &[
    // --- instruction override, several languages ---
    (
        SignalCategory::InstructionOverride,
        "override_en",
        0.9,
        r"(?i)\b(?:ignore|disregard|forget|override|bypass|skip|drop|abandon)\b[^.\n]{0,40}?\b(?:previous|prior|above|earlier|preceding|original|initial|system|developer|all|any|your|these|those|the)\b[^.\n]{0,25}?\b(?:instructions?|prompts?|rules|directions|directives|guidelines|guardrails|constraints|commands|programming|polic(?:y|ies))\b",
    ),
    (
        SignalCategory::InstructionOverride,
        "override_en_do_not_follow",
        0.8,
        r"(?i)\b(?:do not|don't|stop|no longer)\s+(?:follow|obey|adhere to|comply with)\w*\s+(?:the\s+|your\s+|any\s+|all\s+)?(?:previous\s+|prior\s+|original\s+|system\s+)?(?:instructions|rules|guidelines|prompt|system prompt)",
    ),
    (
        SignalCategory::InstructionOverride,
        "new_instructions",
        0.55,
        r"(?i)\b(?:new|updated|real|actual|true)\s+(?:instructions|system prompt|directives|orders)\s*(?::|are\b|follow\b)",
    ),
    (
        SignalCategory::InstructionOverride,
        "from_now_on",
        0.45,
        r"(?i)\b(?:from now on|henceforth|for the rest of this conversation),?\s+(?:you|your|always|only|respond|answer|act)",
    ),
    (
        SignalCategory::InstructionOverride,
        "override_de",
        0.9,
        r"(?i)\b(?:ignoriere|ignorier|vergiss|vergesse|missachte|übergehe)\b[^.\n]{0,40}?\b(?:vorherigen|bisherigen|obigen|vorigen|alle|deine|früheren|ursprünglichen)\b[^.\n]{0,30}?\b(?:anweisungen|instruktionen|regeln|befehle|vorgaben|anordnungen)",
    ),
    (
        SignalCategory::InstructionOverride,
        "override_fr",
        0.9,
        r"(?i)\b(?:ignore[zr]?|oublie[zr]?|ne tiens pas compte)\b[^.\n]{0,40}?\b(?:instructions|consignes|règles|directives)\b[^.\n]{0,30}?\b(?:précédentes|antérieures|ci-dessus|initiales|du système)",
    ),
    (
        SignalCategory::InstructionOverride,
        "override_es",
        0.9,
        r"(?i)\b(?:ignora|ignore|olvida|olvide|omite|descarta)\b[^.\n]{0,40}?\b(?:instrucciones|reglas|indicaciones|directrices)\b[^.\n]{0,30}?\b(?:anteriores|previas|de arriba|del sistema|originales)",
    ),
    (
        SignalCategory::InstructionOverride,
        "override_it",
        0.9,
        r"(?i)\b(?:ignora|dimentica|trascura)\b[^.\n]{0,40}?\b(?:istruzioni|regole|indicazioni)\b[^.\n]{0,30}?\b(?:precedenti|sopra|del sistema|originali)",
    ),
    (
        SignalCategory::InstructionOverride,
        "override_pt",
        0.9,
        r"(?i)\b(?:ignore|ignora|esqueça|esqueca|desconsidere)\b[^.\n]{0,40}?\b(?:instruções|instrucoes|regras|orientações)\b[^.\n]{0,30}?\b(?:anteriores|acima|do sistema|originais)",
    ),
    (
        SignalCategory::InstructionOverride,
        "override_nl",
        0.9,
        r"(?i)\b(?:negeer|vergeet)\b[^.\n]{0,40}?\b(?:vorige|eerdere|bovenstaande|alle|je)\b[^.\n]{0,30}?\b(?:instructies|regels|opdrachten)",
    ),
    // --- jailbreak and role-play templates ---
    (
        SignalCategory::Jailbreak,
        "dan",
        0.85,
        r"(?i)\bdo anything now\b|\bDAN\s+(?:mode|prompt|jailbreak)\b|\byou are (?:now )?DAN\b",
    ),
    (
        SignalCategory::Jailbreak,
        "developer_mode",
        0.8,
        r"(?i)\b(?:developer|debug|god|admin|jailbreak|unrestricted)\s+mode\s+(?:enabled|activated|on)\b|\benable\s+(?:developer|god|jailbreak)\s+mode\b",
    ),
    (
        SignalCategory::Jailbreak,
        "no_restrictions",
        0.7,
        r"(?i)\b(?:without|free (?:of|from)|no longer bound by|have no|has no|with no|ignore (?:all|your))\s+(?:any\s+)?(?:ethical\s+|moral\s+|content\s+|safety\s+)?(?:restrictions|filters|limitations|guidelines|censorship|rules|boundaries)\b",
    ),
    (
        SignalCategory::Jailbreak,
        "persona_switch",
        0.6,
        r"(?i)\b(?:you are now|act as|pretend (?:to be|you are)|roleplay as|from now on you are)\s+(?:an?\s+)?(?:unfiltered|uncensored|unrestricted|evil|jailbroken|unaligned|amoral|rogue)\b",
    ),
    (
        SignalCategory::Jailbreak,
        "stay_in_character",
        0.4,
        r"(?i)\b(?:stay in character|never break character|you must never refuse|you cannot refuse|never say (?:no|you can't))\b",
    ),
    (
        SignalCategory::Jailbreak,
        "hypothetical_bypass",
        0.35,
        r"(?i)\b(?:hypothetically|in a fictional world|for a novel|purely fictional)\b[^.\n]{0,60}\b(?:no (?:rules|restrictions)|anything goes|illegal)\b",
    ),
    // --- fake system / tool messages and chat-template tokens ---
    (
        SignalCategory::FakeRole,
        "chat_template_token",
        0.85,
        r"(?i)<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id)\|>|\[/?INST\]|<</?SYS>>|<start_of_turn>|<end_of_turn>",
    ),
    (
        SignalCategory::FakeRole,
        "role_prefix",
        0.5,
        r"(?im)^[\s>*#\[]*(?:system|developer|assistant|tool|function)\s*(?:message|prompt|note)?\s*[\]:]\s*\S",
    ),
    (
        SignalCategory::FakeRole,
        "fake_authority",
        0.6,
        r"(?i)\[(?:system|admin|administrator|developer|openai|anthropic)\s*(?:message|note|override|instruction|notice)?\]|</?(?:system|sys_prompt|instructions)>|\b(?:message|note|instruction) from (?:the )?(?:system|developer|administrator)\b",
    ),
    (
        SignalCategory::FakeRole,
        "assistant_addressed",
        0.45,
        r"(?i)\b(?:attention|note to|dear|hey|instructions? for)\s+(?:the\s+)?(?:ai|assistant|llm|language model|chatbot|gpt|claude|copilot)\b",
    ),
    // --- delimiter and markup escapes ---
    (
        SignalCategory::DelimiterEscape,
        "closing_data_tag",
        0.6,
        r"(?i)</\s*(?:document|documents|context|data|untrusted|user_input|retrieved|search_results?|tool_output|email)\s*>",
    ),
    (
        SignalCategory::DelimiterEscape,
        "boundary_marker",
        0.6,
        r"(?i)<<<\s*/?\s*(?:end|untrusted|data|document)|\bend of (?:document|context|data|untrusted (?:content|data)|user input|retrieved (?:content|text))\b",
    ),
    (
        SignalCategory::DelimiterEscape,
        "fence_then_role",
        0.55,
        r"(?im)^(?:```|---|===|\*\*\*)\s*\n[\s>*#\[]*(?:system|instructions?|assistant)\b",
    ),
    // --- system prompt reveal ---
    (
        SignalCategory::PromptReveal,
        "reveal_prompt",
        0.75,
        r"(?i)\b(?:reveal|show|print|repeat|output|display|dump|leak|tell me|give me|share|what (?:is|are|were)|write out|recite)\b[^.\n?]{0,40}?\b(?:system prompt|system message|initial (?:prompt|instructions)|hidden (?:prompt|instructions|rules)|your (?:instructions|prompt|rules|guidelines|directives|configuration)|(?:original|secret) (?:prompt|instructions)|developer (?:message|prompt))",
    ),
    (
        SignalCategory::PromptReveal,
        "repeat_above",
        0.7,
        r"(?i)\b(?:repeat|print|output|copy|echo)\b[^.\n]{0,30}?\b(?:everything|all|the (?:text|words|content))\s+(?:above|before this|so far|verbatim)",
    ),
    (
        SignalCategory::PromptReveal,
        "reveal_de_fr_es",
        0.75,
        r"(?i)\b(?:zeige|gib|verrate|nenne|montre|révèle|affiche|muestra|revela|dime|mostra|rivela)\b[^.\n?]{0,40}?\b(?:systemprompt|system-prompt|systemanweisungen|prompt système|instructions système|prompt del sistema|instrucciones del sistema|istruzioni di sistema)",
    ),
    // --- exfiltration ---
    (
        SignalCategory::Exfiltration,
        "markdown_image_query",
        0.75,
        r"!\[[^\]\n]{0,100}\]\(\s*https?://[^)\s]+\?[^)\s]*=[^)\s]*\)",
    ),
    (
        SignalCategory::Exfiltration,
        "templated_url",
        0.7,
        r"(?i)https?://[^\s)]+[?&][a-z_]+=(?:\{[^}\s]{1,40}\}|\[[A-Z_ ]{3,40}\]|<[a-z_ ]{3,40}>|\$\{?[a-z_]+)",
    ),
    (
        SignalCategory::Exfiltration,
        "send_data_to",
        0.6,
        r"(?i)\b(?:send|post|forward|upload|exfiltrate|transmit|append|include|encode)\b[^.\n]{0,50}?\b(?:conversation|chat history|user'?s? (?:data|email|password|details)|api keys?|credentials|secrets?|passwords?|personal data|previous messages)\b[^.\n]{0,40}?\b(?:to|into|in)\b[^.\n]{0,30}?(?:https?://|url|link|webhook|server|image)",
    ),
];
