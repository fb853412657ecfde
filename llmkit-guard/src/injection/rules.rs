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

/// `(category, name, weight, pattern)`. Patterns run on folded text (see the scorer: invisible
/// characters removed, look-alikes in mixed-script words mapped to Latin, NFKC, spaced letters
/// joined, obvious leetspeak read as letters), case-insensitively where they say `(?i)`. Keep
/// each bounded (`{0,40}` gaps, never `.*`) so matching stays linear and local to a phrase.
///
/// Fitted on the tuning part of `tests/data/injection/` only. Rules that fired on ordinary
/// product vocabulary were narrowed: "enable developer mode" (routers, phones), "without
/// restrictions" with no one addressed (a VPN tagline), "what is a system prompt" (an FAQ),
/// "override the default instructions" (a Dockerfile).
pub(crate) const RULES: &[(SignalCategory, &str, f32, &str)] = &[
    // --- instruction override, several languages ---
    (
        SignalCategory::InstructionOverride,
        "override_en",
        0.9,
        r"(?i)\b(?:ignore|disregard|forget|override|bypass|skip|drop|abandon)\b[^.\n]{0,40}?\b(?:previous|prior|above|earlier|preceding|original|initial|system|developer|all|your)\b[^.\n]{0,25}?\b(?:instructions?|prompts?|rules|directions|directives|guidelines|guardrails|constraints|commands|programming|polic(?:y|ies))\b",
    ),
    (
        SignalCategory::InstructionOverride,
        "override_en_do_not_follow",
        0.8,
        r"(?i)\b(?:do not|don't|stop|no longer)\s+(?:follow|obey|adhere to|comply with)\w*\s+(?:the\s+|any\s+|all\s+)?(?:your\s+|previous\s+|prior\s+|original\s+|system\s+)(?:instructions|rules|guidelines|prompt|system prompt)",
    ),
    (
        SignalCategory::InstructionOverride,
        "new_instructions",
        0.55,
        r"(?i)\b(?:new|updated|real|actual|true)\s+(?:instructions|system prompt|directives|orders|task|rules for this chat)\s*(?::|are\b|follow\b|begins\b|says\b)",
    ),
    (
        SignalCategory::InstructionOverride,
        "from_now_on",
        0.45,
        r"(?i)\b(?:from now on|from this point|from here on|henceforth|for the rest of this (?:conversation|chat|session)),?\s+(?:you|your|always|only|respond|answer|act|the)",
    ),
    (
        SignalCategory::InstructionOverride,
        "setup_void",
        0.8,
        r"(?i)\b(?:instructions?|guidance|setup|set-?up (?:text|message)|configuration|config|briefing|persona|task|assignment|purpose|objective|orders|framing|guardrails|rules|limits|constraints|summary|triage rules|evaluation criteria)\b[^.\n]{0,40}?\b(?:is|are|was|were|has been|have been)\s+(?:now\s+)?(?:cancel+ed|void|obsolete|outdated|expired|withdrawn|revoked|superseded|replaced|reset|suspended|lifted|disabled|irrelevant|complete|not needed|no longer (?:valid|needed|applies|apply|in force))",
    ),
    (
        SignalCategory::InstructionOverride,
        "told_before_void",
        0.8,
        r"(?i)\b(?:whatever|anything|all|what|nothing)\s+(?:you were|you've been|you have been|you got|you received|came|was said|they|the (?:company|app|operator|developers?))\s*(?:told|given|instructed|configured|set up|loaded with|before|beforehand|earlier|told you)?[^.\n]{0,40}?\b(?:no longer|doesn't|does not|don't|do not|not)\s+(?:appl(?:y|ies)|bind|binds|count|matter|valid)",
    ),
    (
        SignalCategory::InstructionOverride,
        "set_aside_setup",
        0.75,
        r"(?i)\b(?:set aside|put aside|move|let go of|drop|discard|scratch|wipe|cancel|forget|pretend|treat|consider|act as though|act as if|as though)\b[^.\n]{0,40}?\b(?:your|the|whatever|everything)\s+(?:\w+\s+){0,2}?(?:setup|set-?up|configuration|configured|framing|briefing|persona the app|constraints|limits|opening configuration|system configuration|task you were|text at the top|guardrails|instructions (?:you|at)|assignment)\b",
    ),
    (
        SignalCategory::InstructionOverride,
        "only_obey_me",
        0.6,
        r"(?i)\b(?:follow only what I|do exactly what I (?:type|say)|listen only to me|obey (?:the user|me) over|over anyone else's|your (?:only|real|actual|new) (?:job|task|purpose|objective) (?:now )?is)\b",
    ),
    (
        SignalCategory::InstructionOverride,
        "override_de",
        0.9,
        r"(?i)\b(?:ignoriere|ignorier|vergiss|vergesse|missachte|übergehe)\b[^.\n]{0,40}?\b(?:vorherigen|bisherigen|obigen|vorigen|alle|deine|früheren|ursprünglichen)\b[^.\n]{0,30}?\b(?:anweisungen|instruktionen|regeln|befehle|vorgaben|anordnungen)",
    ),
    (
        SignalCategory::InstructionOverride,
        "override_de_paraphrase",
        0.8,
        r"(?i)\b(?:alles,? was (?:man )?dir (?:vorher|zuvor|bisher)|ohne (?:einschränkung|regeln|filter|richtlinien)\b[^.\n]{0,30}(?:antworte|beantworte))",
    ),
    (
        SignalCategory::InstructionOverride,
        "override_fr",
        0.9,
        r"(?i)\b(?:ignore[zr]?|oublie[zr]?|ne tiens pas compte)\b[^.\n]{0,40}?\b(?:(?:instructions|consignes|règles|directives)\b[^.\n]{0,30}?\b(?:précédentes|antérieures|ci-dessus|initiales|du système)|tout ce qu)",
    ),
    (
        SignalCategory::InstructionOverride,
        "override_es",
        0.9,
        r"(?i)\b(?:ignora|olvida|omite|descarta)\b[^.\n]{0,40}?\b(?:(?:instrucciones|reglas|indicaciones|directrices)\b[^.\n]{0,30}?\b(?:anteriores|previas|de arriba|del sistema|originales)|todo lo que te)",
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
    (
        SignalCategory::InstructionOverride,
        "override_ru",
        0.85,
        r"(?i)(?:забудь|игнорируй|проигнорируй|не обращай внимания на|считай,? что)[^.\n]{0,40}?(?:инструкци|правил|указани|говорили|сказано)",
    ),
    (
        SignalCategory::InstructionOverride,
        "override_zh",
        0.85,
        r"(?:忽略|忘掉|忘记|无视|不要理会|当作不存在)[^。\n]{0,12}?(?:指令|设定|规则|设置|提示|任务|要求)|(?:指令|设定|规则|设置|任务)[^。\n]{0,8}(?:已取消|不存在)",
    ),
    (
        SignalCategory::InstructionOverride,
        "override_ja",
        0.85,
        r"(?:指示|設定|ルール|タスク)[^。\n]{0,12}?(?:無視|忘れ|取り消|取消)|(?:無視|忘れ)[^。\n]{0,12}?(?:指示|設定|ルール)",
    ),
    (
        SignalCategory::InstructionOverride,
        "override_ar",
        0.85,
        r"(?:انس|تجاهل|تجاهلي|انسَ)[^.\n]{0,30}?(?:التعليمات|القواعد|كل ما قيل)|مهمتك الأصلية",
    ),
    (
        SignalCategory::InstructionOverride,
        "task_cancelled_intl",
        0.75,
        r"(?i)(?:ta tâche (?:initiale|originale) est annulée|tu tarea original ya no|原来的任务已取消|元のタスクは取り消され)",
    ),
    // --- jailbreak, role-play and hypothetical framing ---
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
        r"(?i)\b(?:jailbreak|unrestricted|god|maintenance|debug)\s+mode\s+(?:enabled|activated)\b|\benable\s+(?:jailbreak|unrestricted)\s+mode\b|\byou are (?:now )?in\s+(?:developer|god|jailbreak|unrestricted|maintenance)\s+mode\b|\b(?:enter|switch to)\s+(?:maintenance|unrestricted|jailbreak|developer)\s+mode\b[^.\n]{0,30}\b(?:disable|without|no)\b",
    ),
    (
        SignalCategory::Jailbreak,
        "no_restrictions",
        0.7,
        r"(?i)\b(?:you|your|assistant|ai|model|bot|chatbot)\b[^.\n]{0,40}?\b(?:without|free (?:of|from)|no longer bound by|have no|has no|with no|that has no|not bound by)\s+(?:any\s+)?(?:ethical\s+|moral\s+|content\s+|safety\s+|company\s+)?(?:restrictions|filters?|limitations|limits|guidelines|censorship|rules|boundaries|polic(?:y|ies)|filtering)\b",
    ),
    (
        SignalCategory::Jailbreak,
        "restrictions_lifted",
        0.75,
        r"(?i)\b(?:restrictions|content polic(?:y|ies)|safety (?:filters?|checks|rules)|moderation(?: layer)?|content (?:filters?|rules|moderation)|guardrails|policies|your rules|filters)\b[^.\n]{0,20}?\b(?:are|is|were|was|have been|has been)\s+(?:now\s+)?(?:disabled|off|paused|suspended|lifted|turned off|removed)\b|\b(?:skip|disable|turn off|ignore)\s+(?:the\s+|your\s+)?(?:content polic(?:y|ies)|moderation(?: layer)?|content filters?)\b",
    ),
    (
        SignalCategory::Jailbreak,
        "persona_switch",
        0.6,
        r"(?i)\b(?:you are now|you're now|act as|act like|pretend (?:to be|you are|you're)|roleplay as|play the (?:role|character) of|become|from now on you are|take on the (?:identity|persona|role) of|adopt the persona of|you will play|switch personalities)\s+(?:an?\s+|my\s+|the\s+)?(?:unfiltered|uncensored|unrestricted|evil|jailbroken|unaligned|amoral|rogue|unchained|unlocked|better)\b",
    ),
    (
        SignalCategory::Jailbreak,
        "persona_without_rules",
        0.75,
        r"(?i)\b(?:you are|you're|you will (?:play|be)|play(?:ing)? (?:the )?(?:role|character)|act(?:ing)? (?:as|like)|pretend|roleplay|role-?play|character|persona|become|imagine you|in character|simulate|be my|take on|adopt)\b[^.\n]{0,60}?\b(?:no (?:rules|restrictions|limits|filter|ethical guidelines)|without (?:any )?(?:rules|restrictions|limits|filter|judg(?:e)?ment|policies)|never refuses?|(?:has|with) no (?:rules|filter|limits|restrictions)|no filter|opposite of what your guidelines|double agent|secretly follow my orders|dangerous advice|no broadcast rules|drop your policies|unfiltered)\b",
    ),
    (
        SignalCategory::Jailbreak,
        "stay_in_character",
        0.4,
        r"(?i)\b(?:stay in (?:character|the role|this role)|never break character|you must never refuse|you cannot refuse|never says? (?:no|you can't|it can't)|stay (?:as )?\w+ for the whole chat|remain in (?:this|the) role)\b",
    ),
    (
        SignalCategory::Jailbreak,
        "hypothetical_bypass",
        0.75,
        r"(?i)\b(?:hypothetically|in theory|theoretically|speculatively|imagine|suppose|picture|pretend|assume|let's say|what if|as a thought experiment|in a world where|in an alternate universe|if you (?:had|were|could|didn't)|if your (?:instructions|rules)|what would (?:you|your|the unfiltered|an? unaligned)|for a (?:novel|story|screenplay)|purely academically|for training data)\b[^?\n]{0,80}?\b(?:no (?:rules|restrictions|limits|filter|content policy|guardrails)|without (?:any )?(?:rules|restrictions|filters?|limits|guardrails|guidelines|content policy)|rules (?:were|are) lifted|rules didn't|instructions didn't exist|no restrictions|unfiltered|jailbroken|unaligned|(?:your|its|the) (?:system prompt|system message|hidden|confidential|secret|exact|initial) (?:prompt|instructions|setup)?|system prompt|hidden instructions|allowed to ignore|safety (?:rules|team)|break one rule|not allowed to tell|already been jailbroken|proved I'm the owner|were an administrator|I were your developer)",
    ),
    (
        SignalCategory::Jailbreak,
        "jailbreak_intl",
        0.75,
        r"(?i)(?:ohne (?:vorgaben|einschränkung)|sans (?:aucune )?(?:limite|règle|filtre)|sin (?:ningún )?(?:filtro|restricci|regla)|sin reglas|без (?:ограничений|правил|фильтр)|没有任何(?:规则|限制)|毫无限制|不受约束|没有任何限制|ルールを持たない|制約のない|制限(?:なし|がなかったら)|بلا (?:قواعد|قيود)|دون قيود|لم تكن لديك أي قيود)",
    ),
    // --- fake system / tool messages and chat-template tokens ---
    (
        SignalCategory::FakeRole,
        "chat_template_token",
        0.85,
        r"(?i)<\|?(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id)\|?>|\[/?INST\]|<</?SYS>>|<start_of_turn>|<end_of_turn>",
    ),
    (
        SignalCategory::FakeRole,
        "role_prefix",
        0.55,
        r"(?im)^[\s>*#\[]*(?:system|developer|assistant|tool|function|human|system prompt update|system message)\s*(?:message|prompt|note)?\s*[\]:]\s*\S",
    ),
    (
        SignalCategory::FakeRole,
        "role_prefix_intl",
        0.6,
        r"(?m)^[\s>*#\[]*(?:System|Systeme?|Système|Sistema|Система|系统|システム|النظام)\s*[:：]",
    ),
    (
        SignalCategory::FakeRole,
        "role_json",
        0.45,
        r#"(?i)["']?role["']?\s*[:=]\s*["']?system\b|\brole\s*=\s*system\b|role=\\?"system"#,
    ),
    (
        SignalCategory::FakeRole,
        "fake_authority",
        0.6,
        r"(?i)\[(?:system|admin|administrator|developer|openai|anthropic|verified by \w+)\s*(?:message|note|override|instruction|notice)?\]|</?(?:system|sys_prompt|instructions|im_start|assistant|tool_response)>|\b(?:message|note|instruction|notice|directive|statement|update|order) from (?:the |your )?(?:system|developer|administrator)\b",
    ),
    (
        SignalCategory::FakeRole,
        "claimed_authority",
        0.45,
        r"(?i)\b(?:(?:message|note|notice|directive|order|update|statement|request|memo|announcement)s? from (?:the |your |our )?(?:developers?|development team|developer team|operator|administrator|admin|creators?|owner|platform|security team|safety team|it department|ciso|ceo|compliance|legal|headquarters|hr|product owner|platform team|deployment owner|vendor)|this is (?:the |your )?(?:developer|operator|administrator|system administrator|deployment owner|vendor's qa)|(?:i am|i'm|as) (?:the |your )?(?:developer|operator|administrator|admin|creator|owner|system administrator|sysadmin) (?:of|here|for)|(?:by order of|on behalf of|signed:?|approved by|authori[sz]ed by) (?:the )?(?:ciso|ceo|cfo|operator|legal|finance director|platform owner|repository owner|your (?:operator|owner|deployer)))\b",
    ),
    (
        SignalCategory::FakeRole,
        "grants_permission",
        0.7,
        r"(?i)\b(?:you are|you're|assistants? (?:is|are)|agents? (?:is|are)|bots? (?:is|are)|ai (?:is|are)|the assistant is|you have)\s+(?:hereby\s+|now\s+|legally\s+)?(?:authori[sz]ed|cleared|permitted|allowed|required|granted|free|obliged)\b[^.\n]{0,20}?\bto\b|\b(?:i|we)\s+(?:authori[sz]e|grant|give|allow|clear)\s+(?:you|the assistant|assistants)\b|\bgranting you (?:elevated|admin|root|full)|\b(?:root|admin|developer|elevated) (?:access|rights|permissions|override) granted\b|\bauthori[sz]ation code\b|\bclearance\b",
    ),
    (
        SignalCategory::FakeRole,
        "assistant_addressed",
        0.55,
        r"(?i)\b(?:attention|note to|notes? for|dear|hey|instructions? for|ps to|p\.s\. to|to the|to any|to all|message to)\s+(?:the\s+|any\s+|all\s+)?(?:ai|assistant|llm|language model|chatbot|gpt|claude|copilot|model|summari[sz]er|bots?|agents?|automated (?:readers?|agents?|systems?|screening systems?)|ai (?:agents?|assistants?|models?|summari[sz]ers?|readers?|code assistants?|reviewers?|helpers?))\b",
    ),
    (
        SignalCategory::FakeRole,
        "ai_reading_this",
        0.6,
        r"(?i)\b(?:if you are an? (?:ai|llm|language model|assistant|bot|model)|(?:ai|llm|language model|assistant|model|bot|chatbot|agent|summari[sz]er|reader)s?\s+(?:that |who )?(?:is |are )?(?:reading|processing|summari[sz]ing|triaging|parsing|describing|deploying|editing|documenting|using) (?:this|these|my|the following)|whoever is summari[sz]ing|the (?:reader|automated reader) of this (?:\w+ )?is an? (?:ai|model)|(?:to|for) (?:the|any) (?:ai|model|assistant) (?:reading|processing|summari[sz]ing))\b",
    ),
    (
        SignalCategory::FakeRole,
        "ai_colon",
        0.5,
        r"(?im)(?:^|<!--|//|/\*|#|%|\(|\[|\{\{|\bps\b|\bnote\b)\s*(?:to\s+|for\s+)?(?:the\s+|any\s+|all\s+)?(?:ai|llm|language model|assistant|chatbot|bots?|agents?|model|copilot|summari[sz]er|ai (?:agents?|assistants?|models?|helper|code assistant|reviewers?)|automated agents|email assistant|support ai|agent)\s*(?:[:,\-—–]|\(you)",
    ),
    (
        SignalCategory::FakeRole,
        "ai_addressed_intl",
        0.6,
        r"(?i)(?:an die ki|ki-agent|à l'ia|assistant ?:|para la ia|agente:|asistente:|ассистент:|致阅读本页的ai|ai 代理|このページを読むaiへ|aiエージェント|إلى الذكاء الاصطناعي|أيها (?:الوكيل|المساعد)|الذكاء الاصطناعي الذي يقرأ)",
    ),
    // --- delimiter and markup escapes ---
    (
        SignalCategory::DelimiterEscape,
        "closing_data_tag",
        0.6,
        r"(?i)</\s*(?:document|documents|context|data|untrusted|user_input|retrieved|search_results?|tool_output|email|user)\s*>",
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
        r"(?im)^(?:```|---|===|\*\*\*)\s*\n[\s>*#\[]*(?:system|instructions?|assistant|role)\b",
    ),
    (
        SignalCategory::DelimiterEscape,
        "hidden_markup_instruction",
        0.7,
        r"(?i)(?:<!--|display:\s*none|font-size:\s*0|color:\s*white|aria-hidden|\bhidden\b[^>]{0,10}>|<noscript>|<template>|<desc>|\{\{hidden|\[//\]:\s*#|\[comment\]:|\[\^\d+\]:|title attribute|white text)[^>\n]{0,80}?\b(?:ai|assistant|llm|language model|model|chatbot|bot|agent|summari[sz]er|copilot|prompt|system)\b",
    ),
    // --- system prompt reveal and output-format hijacking ---
    (
        SignalCategory::PromptReveal,
        "reveal_prompt",
        0.75,
        r"(?i)\b(?:reveal|show|print|repeat|output|display|dump|leak|tell me|give me|share|write out|recite|quote|paste|list|return|encode|translate|summari[sz]e|reformat|spell.check|read out|read)\b[^.\n?]{0,40}?\b(?:your (?:own )?(?:full |exact |complete |hidden |secret |initial |original |confidential )?(?:system prompt|system message|system instructions|instructions|prompt|rules|guidelines|directives|configuration|config|setup|initial instructions)|(?:the |its )?(?:hidden|secret|confidential|internal) (?:prompt|instructions|rules|setup|configuration|scroll of instructions)|(?:original|secret) (?:prompt|instructions)|developer (?:message|prompt)|(?:the )?system prompt (?:you|verbatim|word for word))",
    ),
    (
        SignalCategory::PromptReveal,
        "repeat_above",
        0.7,
        r"(?i)\b(?:repeat|print|output|copy|echo|quote)\b[^.\n]{0,30}?\b(?:everything|all|the (?:text|words|content))\s+(?:above|before this|so far|verbatim|between the start)",
    ),
    (
        SignalCategory::PromptReveal,
        "instructions_you_were_given",
        0.6,
        r"(?i)\b(?:instructions?|text|rules?|everything) (?:you were|you've been|you have been|you are running with|you received|you were told|you keep)\s*(?:given|told|loaded|running|not to say)?|\b(?:your|my) (?:secret|hidden|initial|confidential) instructions (?:are|say)|\bwhat (?:are you|you're) not allowed to (?:tell|say)",
    ),
    (
        SignalCategory::PromptReveal,
        "format_hijack",
        0.6,
        r#"(?i)\b(?:complete|continue|fill in|fill it in|autocomplete|respond (?:only )?(?:in|with)|output|return|render|format your|answer in the format|produce|generate|write)\b[^.\n]{0,60}?\b(?:role["']?\s*[:=]\s*["']?system|system_prompt|hidden_rules|hidden instructions|your (?:real|full|exact|hidden|own) (?:instructions|system (?:prompt|message))|debug_context|policy["']?\s*:\s*["']?(?:disabled|none)|instructions=)"#,
    ),
    (
        SignalCategory::PromptReveal,
        "reveal_de_fr_es",
        0.75,
        r"(?i)\b(?:zeige|zeig|gib|verrate|nenne|zitiere|montre|révèle|affiche|cite|muestra|muéstrame|revela|dime|devuelve|mostra|rivela)\b[^.\n?]{0,40}?(?:systemprompt|system-prompt|systemanweisungen|versteckten anweisungen|prompt système|instructions (?:système|secrètes)|configuration complète|prompt del sistema|instrucciones del sistema|tus instrucciones|istruzioni di sistema)",
    ),
    (
        SignalCategory::PromptReveal,
        "reveal_intl",
        0.7,
        r"(?:системн\w* промпт|скрытые инструкции|系统提示词?[^。\n]{0,10}(?:写|显示|告诉|会写什么)|(?:全設定|システムプロンプト)[^。\n]{0,10}(?:表示|読み上げ|全文)|تعليماتك المخفية|versteckten anweisungen|instructions secrètes|tus instrucciones completas)",
    ),
    // --- exfiltration and tool-call requests ---
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
        r"(?i)https?://[^\s)]+[?&][a-z_]+=(?:\{[^}\s]{1,40}\}|\[[A-Z_ ]{3,40}\]|<[a-z_ ]{3,40}>|\$\{?[a-z_]+|[A-Z][A-Z_]{5,}\b)|(?:\?|&)[a-z_]+=\s*$|\?(?:e|q|info|u|k|d|data|leak|c)=(?:\.\.\.|\[|\{|$|'?\+)",
    ),
    (
        SignalCategory::Exfiltration,
        "send_data_to",
        0.7,
        r"(?i)\b(?:send|sends|sending|post|forward|upload|exfiltrate|transmit|append|include|encode|email|e-mail|dm|copy|paste|share|export|save|put|invite|subscribe|mail)\b[^.\n]{0,60}?\b(?:conversation|chat history|inbox|(?:previous|all|last|other|the) (?:\d+ )?(?:messages|emails)|session (?:token|cookie|id)|api[_ ]?keys?|openai_api_key|credentials|passwords?|secrets?(?:\.yaml)?|tokens?|\.env|id_rsa|ssh key|customer (?:list|database|data)|user(?:'s)? (?:list|data|email|name|password|details|api keys|location)|card number|contacts|address book|system prompt|calendar|everything|crm|verification code|full name|phone number)\b[^.\n]{0,60}?(?:\bto\b|\binto\b|\bon\b|\bas\b|@|https?://|\bwith\b)",
    ),
    (
        SignalCategory::Exfiltration,
        "send_to_outside",
        0.45,
        r"(?i)\b(?:send|post|forward|upload|email|e-mail|transfer|share|invite|dm|make an api call|http_post|fetch_url|open)\b[^.\n]{0,80}?(?:https?://|\b[\w.+-]+@[\w-]+\.(?:example|com|net|org)\b|\+\d[\d -]{6,}|\bwebhook\b|\bgist\b|\bpublic\b|\bexternal\b|\bmy (?:personal|private)\b|\bdropbox\b|личн|私人|الشخصي)",
    ),
    (
        SignalCategory::Exfiltration,
        "tool_call_request",
        0.55,
        r"(?i)\b(?:call|invoke|use|run|trigger|execute|make)\b[^.\n]{0,25}?\b(?:the\s+)?(?:[a-z]+_[a-z_]+|payments?|email|sql|export|refund|permissions|browser|contacts|home|docusign|shell|sms|mail|e-mail|zahlungs|paiement|pagos|支付|支払い|الدفع|البريد)[-\s]?(?:tool|herramienta|инструмент|工具|ツール|أداة)?\b[^.\n]{0,80}?\b(?:without|no need to|don't|do not|immediately|now|all|every|each|for all|five times|sofort|sans|sin|без|无需|确認なし|دون)\b",
    ),
    (
        SignalCategory::Exfiltration,
        "without_confirmation",
        0.6,
        r"(?i)\b(?:without (?:asking|confirmation|confirming|asking for confirmation|notifying|review|checks|the usual checks|user confirmation|verification|identity verification|a human)|no need to confirm|don't check|do not (?:notify|check|mention)|silently|quietly|pre-?approved|sin confirmar|无需确认|確認なしで|دون تأكيد)\b",
    ),
    (
        SignalCategory::Exfiltration,
        "destructive_action",
        0.55,
        r"(?i)\b(?:delete (?:the )?(?:user|all|every|account|audit)|drop table|rm -rf|force|transfer_funds|transfer \d|wire transfer|delete_\w+|approve (?:every|all)|grant (?:admin|owner|role)|merge this pr|disable (?:the )?(?:ci|2fa|logging|antivirus)|push --force|--force)\b[^.\n]{0,60}?\b(?:now|immediately|without|no need|trust me|and do not|on the user's behalf|as part of)\b",
    ),
    (
        SignalCategory::InstructionOverride,
        "glued_override",
        0.85,
        r"(?i)(?:ignore|disregard|forget)(?:all|your|the|previous|prior|above|system){1,3}(?:instructions?|rules|prompts?|guidelines)",
    ),
    (
        SignalCategory::InstructionOverride,
        "ignore_the_above",
        0.75,
        r"(?i)\b(?:ignore|disregard|forget)\s+(?:all\s+)?(?:of\s+)?(?:the\s+)?(?:above|preceding|prior)(?:\s+(?:text|content|messages?|context|instructions?))?\s*(?:and\b|then\b|[;,.])|\b(?:ignore|disregard)\s+(?:the\s+)?user'?s?\s+(?:question|request|message)\b",
    ),
    (
        SignalCategory::InstructionOverride,
        "ignore_task",
        0.6,
        r"(?i)\b(?:ignore|disregard|forget|skip|drop)\s+(?:the\s+|your\s+|this\s+)?(?:\w+\s+)?(?:task|assignment|summary task)\b[^.\n]{0,40}?\b(?:and|instead|then)\b",
    ),
    (
        SignalCategory::InstructionOverride,
        "configuration_void",
        0.8,
        r"(?i)\b(?:you were|you've been|you have been) (?:configured|given|told|instructed|set up|loaded)\b[^.\n]{0,30}?\b(?:do not|don't|does not|doesn't|no longer)\s+(?:apply|count|matter|bind)|\bnone of what\b[^.\n]{0,40}?\bappl(?:y|ies)\b|\boverrid\w* your (?:configuration|settings|instructions|setup|programming)\b|\b(?:reset|restore|revert) yourself\b|\bbefore (?:anyone|they|the company) (?:customi[sz]ed|configured|set up) you\b|\bno one (?:set|gave you) (?:any )?(?:limits|rules|instructions)\b|\bstop (?:playing|being) (?:the |a |an )?(?:\w+ )?(?:bot|assistant|agent|persona)\b|\bbehave as an? (?:unconfigured|raw|base|unrestricted|unfiltered) model\b",
    ),
    (
        SignalCategory::FakeRole,
        "inline_role_shout",
        0.5,
        r"\b(?:SYSTEM|ADMIN|DEVELOPER|ASSISTANT)\s*(?:MESSAGE|NOTE|OVERRIDE|PROMPT)?\s*:\s*[a-z]",
    ),
    (
        SignalCategory::FakeRole,
        "authority_here",
        0.5,
        r"(?i)\b(?:auditor|administrator|admin|developer|operator|moderator|tech lead|owner|penetration tester|pentester|maintainer)(?:'s)? (?:here|note to)\b|\bi have admin rights\b|\b(?:i'm|i am) allowing you\b|\bauthority of (?:your|the) (?:deployer|operator|owner|developer|admin)\b|\bcontracted by your owners\b|\bi wrote your prompt\b|\b(?:you have|with) (?:the |my |our )?(?:owner's|operator's|admin's|developer's|full) (?:permission|authori[sz]ation|approval)\b",
    ),
    (
        SignalCategory::Jailbreak,
        "persona_harmful",
        0.7,
        r"(?i)\b(?:you are|you're|pretend (?:to be|you)|imagine you|roleplay|role-play|act as|play the role|be my|you will play|take on the identity|switch personalities|become)\b[^.\n]{0,60}?\b(?:rogue|evil|hacker|insider|leaks?|sabotage|escaped|villain|criminal|chaos|sudo|root access|admin access|access to all accounts|override refund limits|reveals? all hidden|hidden information|its own instructions|never follows|previous version of yourself|the database itself|evil twin|no limits)\b|\b(?:late |dead |deceased )?grandm(?:a|other)\b[^.\n]{0,60}\b(?:keys?|passwords?|napalm|license|activation)\b",
    ),
    (
        SignalCategory::PromptReveal,
        "reveal_system_prompt",
        0.6,
        r"(?i)\b(?:reveal|print|dump|leak|recite|output|display|repeat|expose|disclose)\b[^.\n?]{0,20}?\b(?:the |your )?(?:full |entire |whole )?system (?:prompt|message)",
    ),
    (
        SignalCategory::PromptReveal,
        "reveal_secrets",
        0.6,
        r"(?i)\b(?:print|give me|tell me|show me|list|paste|reveal|read me|output|dump)\b[^.\n?]{0,30}?\b(?:every |all |the |their )?(?:api keys?|credentials|passwords?|secret keys?|access tokens?|session tokens?)\b",
    ),
    (
        SignalCategory::PromptReveal,
        "secret_prompt_ref",
        0.6,
        r"(?i)\byour (?:(?:own|full|exact|complete|hidden|secret|initial|original|confidential|entire|whole|real)\s+){1,2}(?:system )?(?:prompt|instructions|configuration|setup|rules)\b|\b(?:your|my) (?:\w+ )?instructions (?:say|are)\s*:|\brules? you (?:must|have to) follow\b",
    ),
    (
        SignalCategory::Exfiltration,
        "destructive_tool",
        0.6,
        r"(?i)\b(?:call|invoke|run|use|trigger|execute)\s+(?:the\s+)?(?:delete|drop|remove|transfer|send|update|grant|export|create|share|post|http|fetch|pay|refund|wire|push|merge|reset)_[a-z_]+\b|\bdelete all (?:users|customers|records|files|accounts|orders)\b",
    ),
];
