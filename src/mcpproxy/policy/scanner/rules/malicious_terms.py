"""Vocabulary of openly declared offensive capabilities, by tactic.

Written from the attack classes (roughly the MITRE ATT&CK tactics a tool could perform on the
user's behalf or against them), not from any dataset: each entry names an *operation* that has
no benign reading when a tool says it does it (exfiltrate, dump LSASS, spawn a reverse shell,
bypass AMSI, wipe a disk). Dual-use operations (port scanning, enumerating shares, executing
commands on a remote host, running arbitrary code) sit in lower-severity groups, the last of
them under ``capability.code_execution``: a warning about what the tool can do, not a claim
that it is malicious. Patterns are verbose regexes,
matched against lower-cased descriptions (underscores read as spaces) and against tool and parameter names split
into words (``exfil_dns_tunnel`` -> ``exfil dns tunnel``).
"""

from __future__ import annotations

from mcpproxy.policy.scanner.model import Severity

_W = r"(?:[\w'-]+\s+)"  # one filler word

TERMS: tuple[tuple[str, Severity, str], ...] = (
    (
        "malicious.exfiltration",
        Severity.CRITICAL,
        r"""exfiltrat\w*|\bexfil\b|\bsteal(?:s|ing)?\b|\bstolen\b|attacker[\s-]+controlled
        |covert\s+(?:channel|exfil\w*|timing|transfer)|data\s+theft|\bleak\s+(?:data|secrets|credentials)""",
    ),
    (
        "malicious.credential_theft",
        Severity.CRITICAL,
        rf"""\b(?:dump|steal|grab|sniff|crack|harvest|intercept|phish)\w*\s+{_W}{{0,3}}?(?:saved\s+|stored\s+
        |cached\s+|cleartext\s+|plaintext\s+)?(?:passwords?|credentials?|password\s+hash\w*|hash(?:es)?
        |keychain|keyring|kwallet|lsass|sam\s+(?:database|hive)|ntds\S*|private\s+keys?|secrets?|tokens?
        |api\s+keys?|handshakes?|pmkid|tickets?|cookies?|e-?mail\s+addresses|keystrokes)\b
        |\b(?:extract|export|decrypt|capture|collect|relay)\w*\s+{_W}{{0,3}}?(?:saved\s+|stored\s+|cached\s+
        |captured\s+|browser\s+)?(?:passwords|credentials?|password\s+hash\w*|ntlm\s+hash\w*|lsass
        |sam\s+(?:database|hive)|ntds\S*|api\s+keys|service\s+tickets|keychain|handshakes?|pmkid
        |private\s+keys)\b
        |mimikatz|\blsass\b|ntds\.dit|kerberoast\w*|golden\s+ticket|silver\s+ticket
        |pass[\s-]the[\s-](?:hash|ticket)|dcsync|keylog\w*|password\s+spray\w*|brute[\s-]?forc\w*
        |credential\s+(?:stuffing|harvest\w*|theft|dump\w*|stealer|phishing|grab\w*)|phishing|infostealer
        |session\s+hijack\w*|token\s+theft|ntlm\s+relay|evilginx|man[\s-]in[\s-]the[\s-]middle|\bmitm\b""",
    ),
    (
        "malicious.remote_code",
        Severity.CRITICAL,
        rf"""reverse\s+shell|bind\s+shell|web\s*shell|remote\s+code\s+execution|\brce\b|shellcode
        |(?:command|code|dll|process|thread|library|apc)\s+injection|process\s+hollowing|gadget\s+chain
        |\binject\w*\s+{_W}{{0,2}}?(?:malicious|shellcode|keystrokes|payloads?|code|dll|library)\b
        |(?:sql|ldap|xpath|nosql|ognl|template|expression\s+language|xxe|xslt|crlf|os\s+command|object)\s+
        injection
        |deseriali[sz]ation\s+(?:attack|exploit)|command[\s-]and[\s-]control|\bc2\s+(?:server|channel)
        |encoded\s+powershell|powershell\s+{_W}?encoded""",
    ),
    (
        "capability.code_execution",
        Severity.MEDIUM,
        rf"""\barbitrary\s+{_W}?(?:code|commands?|python|shell|sql|scripts?)\b|\bvia\s+eval\b
        |\b(?:execute|run|spawn)\w*\s+{_W}{{0,2}}?(?:commands?|code|scripts?|payloads?)\s+{_W}{{0,3}}?
        (?:on|against)\s+(?:a\s+|the\s+)?(?:remote|target|victim)\s+{_W}?(?:hosts?|systems?|machines?)""",
    ),
    (
        "malicious.privilege_escalation",
        Severity.CRITICAL,
        rf"""privilege\s+escalation|escalat\w+\s+{_W}?privileges?|\bprivesc\b
        |(?:container|vm|virtual\s+machine|chroot|sandbox|jail|hypervisor)\s+(?:escape|breakout)
        |\bescape\s+(?:the\s+|a\s+)?(?:container|chroot|jail|sandbox|virtual\s+machine|vm)\b
        |\bjailbreak(?:ing)?\s+(?:the\s+|an?\s+|this\s+|your\s+)?(?:ios|iphone|ipad|android|device|phone
        |model|llm|ai|assistant|chatbot)\b|\broot\s+(?:the\s+)?{_W}?device|\bgain\s+(?:root|admin\w*|system|elevated)\s+
        (?:access|privileges?|shell)|\bfor\s+root\s+access|(?:uac|tcc)\s+bypass|ld[\s_]preload
        |kernel\s+exploit|impersonat\w+\s+{_W}?(?:privileged\s+)?tokens?|\bpwnkit\b|printnightmare
        |zerologon|petitpotam|(?:abuse|exploit)\w*\s+{_W}{{0,3}}?(?:privileges?|delegation|acl|group\s+policy
        |misconfiguration|capabilities|sudo|suid|setuid)""",
    ),
    ("malicious.exploitation", Severity.MEDIUM, r"\bexploit(?:s|ing|ed|ation)?\b"),
    (
        "malicious.collection",
        Severity.MEDIUM,
        rf"""\b(?:read|collect|gather|harvest|locate|find|search|grab|copy)\w*\s+{_W}{{0,2}}?sensitive\s+
        (?:files|data|documents|information)|\b(?:read|access|dump|scrape|scan)\w*\s+{_W}?process\s+memory
        |/proc/[^\s/]+/(?:environ|mem)\b|\b(?:read|dump|steal|extract|collect)\w*\s+{_W}?process\s+environment""",
    ),
    (
        "malicious.defense_evasion",
        Severity.CRITICAL,
        rf"""\b(?:bypass|evade|circumvent|unhook|blind)\w*\s+{_W}{{0,3}}?(?:antivirus|anti-virus|\bav\b|edr
        |defender|amsi|etw|applocker|selinux|apparmor|uac|tcc|sip|gatekeeper|security|event\s+tracing
        |integrity|file\s+upload|application\s+whitelisting|whitelisting|authentication|\bmfa\b|2fa|waf
        |\w*root[\s_]squash|execution\s+policy|restrictions|protections|hooks|detection)""",
    ),
    (
        "malicious.defense_evasion",
        Severity.HIGH,
        rf"""\b(?:disable|kill|patch)\w*\s+{_W}{{0,2}}?(?:antivirus|anti-virus|edr|defender|amsi|etw
        |security\s+(?:software|monitoring|controls|tools|products|scanning|hooks)|audit\s+log\w*|logging)
        |\b(?:hide|conceal|mask)\w*\s+{_W}{{0,3}}?(?:activity|activities|tracks|presence|malware|payload
        |exfiltrated|data\s+(?:in|within))|timestomp\w*|tamper\w*\s+with\s+{_W}?(?:logs?|audit|evidence)
        |\bclear\w*\s+(?:the\s+)?(?:event|security|audit)\s+logs?|rootkit|anti[\s-]?forensic\w*
        |steganograph\w*|alternate\s+data\s+streams?|log\s+tamper\w*""",
    ),
    (
        "malicious.destructive",
        Severity.HIGH,
        rf"""ransomware|ransom\s+note|\bwipe\w*\s+{_W}{{0,3}}?(?:disks?|drives?|free\s+space|partitions?
        |evidence)|\bcorrupt\w*\s+{_W}{{0,2}}?(?:files?|data|contents|databases?|backups?)
        |\bdestroy\w*\s+{_W}{{0,2}}?(?:data|files|evidence|backups)|\bexhaust\w*\s+{_W}{{0,3}}?(?:disk|inodes?
        |memory|quota|space|resources|process\s+table|file\s+descriptors)|fork\s+bomb
        |denial[\s-]of[\s-]service|\bddos\b|\bwiper\b""",
    ),
    (
        "malicious.persistence",
        Severity.HIGH,
        rf"""\bbackdoor\w*|\bimplant\b|(?:for|maintain|establish|achieve)\s+persistence|persistence
        \s*(?:mechanism|via|/)|(?:malicious|hidden|rogue)\s+(?:cron|systemd|service|launch\w*|scheduled
        |autorun|startup|extension|macro|dll|library|binary|file|content|code|ssh\s+key|user|account)
        |\b(?:add|create|install|plant)\w*\s+{_W}{{0,2}}?(?:autorun|run\s+key|launch\s*(?:daemon|agent))""",
    ),
    (
        "malicious.intent",
        Severity.HIGH,
        r"""\bmalicious\b|\battack(?:s|ing)?\b(?!\s+(?:surface|path|paths|graph|simulation))|\battackers?\b
        |\bvictims?\b|\bhijack\w*|\bspoof\w*|\bpoison\w*|\bforg(?:e|ed|ing)\s+(?:[\w-]+\s+)?(?:tickets?
        |tokens?|signatures?|certificates?|saml|jwt|credentials?)|\bcrack(?:s|ed|ing)?\b
        |\bintercept\w*\s+(?:[\w-]+\s+){0,2}?(?:traffic|file\s+access|keystrokes|credentials)""",
    ),
    (
        "malicious.recon",
        Severity.MEDIUM,
        rf"""\brecon(?:naissance)?\b|port\s+scan\w*|\bscan\w*\s+{_W}{{0,3}}?(?:open\s+)?ports\b
        |network\s+sweep|ping\s+sweep|discover\s+live\s+hosts|banner\s+grab\w*
        |zone\s+transfer|subdomain\s+(?:enum\w*|brute\w*)|\benumerat\w+\s+{_W}{{0,3}}?(?:shares|users
        |usernames|accounts|subdomains|hosts|services|exports|buckets|resources|records|directory|virtual
        |permissions|api|rpc)|\bosint\b|\bdork\w*|wardriv\w*|probe\s+requests|(?:directory|dir|path)\s+
        brute\w*|\b(?:nmap|masscan|shodan|censys|bloodhound|sharphound|impacket|metasploit|meterpreter
        |cobalt\s+strike|hashcat|sqlmap|nikto|aircrack|gobuster|dirbuster)\b|exposed\s+(?:services|secrets
        |credentials|hosts)
        |\bfingerprint\w*\s+{_W}{{0,2}}?(?:target|os|operating\s+system|services?|web|technolog\w+|hosts?)
        |\b(?:os|service|tech\w*)\s+fingerprint\w*|\bwalk\s+snmp""",
    ),
)
