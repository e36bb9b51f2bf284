"""The console's words in zh-CN and English: one message catalogue per locale, and the locale of a
request (the language cookie the switch sets, else the browser's Accept-Language, else the server's
``HERALD_DEFAULT_LOCALE``).

Templates call ``t("key")`` or ``t("key", name=value)`` (``str.format`` fields); a page's code calls
``console.t(...)``. Both catalogues hold the same keys (tests/web/test_console_i18n.py): a new
string goes into both. Values are plain text: the template escapes them like any other value.
"""

from __future__ import annotations

from fastapi import Request

LOCALES = ("zh-CN", "en")
LANG_COOKIE = "herald_console_lang"

EN: dict[str, str] = {
    "console.name": "Console",
    "lang.zh-CN": "中文",
    "lang.en": "English",
    "layout.skip": "Skip to the content",
    "layout.language": "Language",
    "layout.navigation": "Sections",
    "layout.logout": "Log out",
    "layout.soon": "coming soon",
    "role.viewer": "viewer",
    "role.operator": "operator",
    "role.admin": "admin",
    "nav.dashboard": "Dashboard",
    "nav.types": "Types",
    "nav.templates": "Templates",
    "nav.channel_accounts": "Channel accounts",
    "nav.announcements": "Announcements",
    "nav.send": "Send",
    "nav.trace": "Trace",
    "nav.users": "Users",
    "nav.api_keys": "API keys",
    "nav.event_webhooks": "Event webhooks",
    "nav.accounts": "Console accounts",
    "nav.audit": "Audit log",
    # login
    "login.title": "Log in",
    "login.username": "Username",
    "login.password": "Password",
    "login.submit": "Log in",
    "login.failed": "Wrong username or password.",
    "login.expired": "Your session has expired. Please log in again.",
    "login.logged_out": "You have logged out.",
    "login.throttled": "Too many failed logins. Try again in {minutes} min.",
    "login.hint": "No account yet? An administrator creates one with: herald admin create NAME --role admin",
    # errors
    "error.title": "Not allowed",
    "error.csrf": (
        "This form has expired or did not come from this console (CSRF check). Reload the page and try again."
    ),
    "error.role": "Your role may not do this (it needs {role}).",
    "error.session_expired": "Your session has expired. Log in again, then repeat what you were doing.",
    "error.login_form": "The login form has expired. Reload the page and log in again.",
    "error.form_type": "The form was not sent as a web form.",
    "error.form_encoding": "The form is not valid UTF-8 text.",
    "error.form_text": "The field {field} contains a NUL character or an invalid one.",
    "error.not_found": "Not found.",
    "error.back": "Back to the dashboard",
    "error.login": "Log in",
    # dashboard
    "dashboard.title": "Dashboard",
    "dashboard.window": "Deliveries that ended in the last 24 hours (as of {at}, refreshed at most every {seconds} s).",
    "dashboard.by_status": "By status",
    "dashboard.by_channel": "By channel",
    "dashboard.by_reason": "By reason",
    "dashboard.queue": "Queue",
    "dashboard.due_now": "Due now",
    "dashboard.sending": "Sending",
    "dashboard.waiting": "Pending, not yet due",
    "dashboard.oldest_due": "Oldest due delivery waiting",
    "dashboard.inbox_items": "In-app items written (24 h)",
    "dashboard.inbox_note": "In-app deliveries are the inbox items themselves; they are not in the tables above.",
    "dashboard.failures": "Last failures",
    "dashboard.no_failures": "No failed delivery in the last 24 hours.",
    "dashboard.nothing": "No delivery ended in the last 24 hours.",
    "dashboard.total": "Total",
    "dashboard.none": "(none)",
    "col.status": "Status",
    "col.channel": "Channel",
    "col.reason": "Reason",
    "col.count": "Count",
    "col.when": "When",
    "col.notification": "Notification",
    "col.user": "User",
    "col.error": "Error",
    "col.username": "Username",
    "col.role": "Role",
    "col.created": "Created",
    "col.last_login": "Last login",
    "col.state": "State",
    "col.actor": "By",
    "col.action": "Action",
    "col.target": "Target",
    "col.details": "Details",
    "col.delivery": "Delivery",
    "col.attempts": "Attempts",
    "col.account": "Account",
    "status.pending": "pending",
    "status.sending": "sending",
    "status.sent": "sent",
    "status.delivered": "delivered",
    "status.undelivered": "undelivered",
    "status.failed": "failed",
    "status.skipped": "skipped",
    "status.expired": "expired",
    "status.cancelled": "cancelled",
    "duration.seconds": "{n} s",
    "duration.minutes": "{n} min",
    "duration.hours": "{n} h",
    "duration.days": "{n} d",
    # console accounts
    "accounts.title": "Console accounts",
    "accounts.new": "New account",
    "accounts.create": "Create",
    "accounts.password": "Password",
    "accounts.confirm": "Password again",
    "accounts.enabled": "active",
    "accounts.disabled": "disabled",
    "accounts.you": "(you)",
    "accounts.disable": "Disable",
    "accounts.enable": "Enable",
    "accounts.disable_confirm": "Disable this account? Its sessions end at once.",
    "accounts.reset": "Set a new password",
    "accounts.reset_submit": "Set password",
    "accounts.reset_note": "Its sessions end: the account logs in again with the new password.",
    "accounts.back": "All accounts",
    "accounts.roles_help": (
        "viewer: reads everything, changes nothing · operator: also sends and edits content"
        " · admin: also accounts, keys and the audit log"
    ),
    "accounts.err.username": "Username: {problem}.",
    "accounts.err.taken": "Username: an account with this name exists already.",
    "accounts.err.role": "Role: choose viewer, operator or admin.",
    "accounts.err.password": "Password: {problem}.",
    "accounts.err.mismatch": "Password again: the two passwords differ.",
    "accounts.err.self": "You cannot disable your own account.",
    "accounts.err.last_admin": "This is the last active admin: make another admin first.",
    # audit log
    "audit.title": "Audit log",
    "audit.filter": "Filter",
    "audit.any": "any",
    "audit.apply": "Show",
    "audit.clear": "Clear",
    "audit.empty": "Nothing recorded yet.",
    "audit.older": "Older entries",
    "audit.newest": "Newest entries",
    # trace
    "trace.title": "Trace",
    "trace.lookup": "Notification id",
    "trace.submit": "Look up",
    "trace.not_found": "No notification {id}.",
    "trace.accepted": "Accepted",
    "trace.type": "Type",
    "trace.status": "Status",
    "trace.recipients": "Recipients",
    "trace.channels": "Channels",
    "trace.send_at": "Send at",
    "trace.expires_at": "Expires at",
    "trace.deliveries": "Deliveries",
    "trace.truncated": "Only the first deliveries are shown.",
    "trace.attempt": "Attempt {n}",
    "trace.read": "read",
    "trace.no_deliveries": "No delivery yet.",
    "trace.counts": "Deliveries by status",
    # notices after a change
    "notice.account_created": "Account created.",
    "notice.account_disabled": "Account disabled; its sessions have ended.",
    "notice.account_enabled": "Account enabled.",
    "notice.password_set": "Password set; the account's sessions have ended.",
}

ZH: dict[str, str] = {
    "console.name": "管理后台",
    "lang.zh-CN": "中文",
    "lang.en": "English",
    "layout.skip": "跳到正文",
    "layout.language": "语言",
    "layout.navigation": "栏目",
    "layout.logout": "退出登录",
    "layout.soon": "即将推出",
    "role.viewer": "只读",
    "role.operator": "运营",
    "role.admin": "管理员",
    "nav.dashboard": "概览",
    "nav.types": "消息类型",
    "nav.templates": "模板",
    "nav.channel_accounts": "渠道账号",
    "nav.announcements": "公告",
    "nav.send": "发送",
    "nav.trace": "消息追踪",
    "nav.users": "用户",
    "nav.api_keys": "API 密钥",
    "nav.event_webhooks": "事件 Webhook",
    "nav.accounts": "后台账号",
    "nav.audit": "操作日志",
    "login.title": "登录",
    "login.username": "用户名",
    "login.password": "密码",
    "login.submit": "登录",
    "login.failed": "用户名或密码错误。",
    "login.expired": "会话已过期，请重新登录。",
    "login.logged_out": "已退出登录。",
    "login.throttled": "登录失败次数过多，请 {minutes} 分钟后再试。",
    "login.hint": "还没有账号？由管理员执行：herald admin create 用户名 --role admin",
    "error.title": "不允许",
    "error.csrf": "表单已过期或并非来自本后台（CSRF 校验）。请刷新页面后重试。",
    "error.role": "您的角色无权执行此操作（需要 {role}）。",
    "error.session_expired": "会话已过期。请重新登录后再操作。",
    "error.login_form": "登录表单已过期。请刷新页面后重新登录。",
    "error.form_type": "表单不是以网页表单格式提交的。",
    "error.form_encoding": "表单内容不是有效的 UTF-8 文本。",
    "error.form_text": "字段 {field} 含有 NUL 或无效字符。",
    "error.not_found": "未找到。",
    "error.back": "返回概览",
    "error.login": "登录",
    "dashboard.title": "概览",
    "dashboard.window": "最近 24 小时内结束的投递（截至 {at}，至多每 {seconds} 秒刷新一次）。",
    "dashboard.by_status": "按状态",
    "dashboard.by_channel": "按渠道",
    "dashboard.by_reason": "按原因",
    "dashboard.queue": "队列",
    "dashboard.due_now": "已到期待发送",
    "dashboard.sending": "发送中",
    "dashboard.waiting": "待发送（未到期）",
    "dashboard.oldest_due": "最早到期投递已等待",
    "dashboard.inbox_items": "写入的站内信（24 小时）",
    "dashboard.inbox_note": "站内信的投递就是收件箱条目本身，不计入上面的表格。",
    "dashboard.failures": "最近的失败",
    "dashboard.no_failures": "最近 24 小时没有失败的投递。",
    "dashboard.nothing": "最近 24 小时没有结束的投递。",
    "dashboard.total": "合计",
    "dashboard.none": "（无）",
    "col.status": "状态",
    "col.channel": "渠道",
    "col.reason": "原因",
    "col.count": "数量",
    "col.when": "时间",
    "col.notification": "通知",
    "col.user": "用户",
    "col.error": "错误",
    "col.username": "用户名",
    "col.role": "角色",
    "col.created": "创建时间",
    "col.last_login": "最近登录",
    "col.state": "状态",
    "col.actor": "操作人",
    "col.action": "操作",
    "col.target": "对象",
    "col.details": "详情",
    "col.delivery": "投递",
    "col.attempts": "尝试次数",
    "col.account": "渠道账号",
    "status.pending": "待发送",
    "status.sending": "发送中",
    "status.sent": "已发送",
    "status.delivered": "已送达",
    "status.undelivered": "未送达",
    "status.failed": "失败",
    "status.skipped": "已跳过",
    "status.expired": "已过期",
    "status.cancelled": "已取消",
    "duration.seconds": "{n} 秒",
    "duration.minutes": "{n} 分钟",
    "duration.hours": "{n} 小时",
    "duration.days": "{n} 天",
    "accounts.title": "后台账号",
    "accounts.new": "新建账号",
    "accounts.create": "创建",
    "accounts.password": "密码",
    "accounts.confirm": "再次输入密码",
    "accounts.enabled": "启用",
    "accounts.disabled": "已停用",
    "accounts.you": "（您）",
    "accounts.disable": "停用",
    "accounts.enable": "启用",
    "accounts.disable_confirm": "停用此账号？其所有会话将立即结束。",
    "accounts.reset": "设置新密码",
    "accounts.reset_submit": "设置密码",
    "accounts.reset_note": "该账号的所有会话将结束，需要用新密码重新登录。",
    "accounts.back": "全部账号",
    "accounts.roles_help": (
        "只读：可查看全部，不能修改 · 运营：还可发送和编辑内容 · 管理员：还可管理账号、密钥和查看操作日志"
    ),
    "accounts.err.username": "用户名：{problem}。",
    "accounts.err.taken": "用户名：已有同名账号。",
    "accounts.err.role": "角色：请选择只读、运营或管理员。",
    "accounts.err.password": "密码：{problem}。",
    "accounts.err.mismatch": "再次输入密码：两次输入的密码不一致。",
    "accounts.err.self": "不能停用自己的账号。",
    "accounts.err.last_admin": "这是最后一个启用的管理员账号：请先设置另一位管理员。",
    "audit.title": "操作日志",
    "audit.filter": "筛选",
    "audit.any": "全部",
    "audit.apply": "查看",
    "audit.clear": "清除",
    "audit.empty": "暂无记录。",
    "audit.older": "更早的记录",
    "audit.newest": "最新的记录",
    "trace.title": "消息追踪",
    "trace.lookup": "通知 ID",
    "trace.submit": "查询",
    "trace.not_found": "没有通知 {id}。",
    "trace.accepted": "已受理",
    "trace.type": "类型",
    "trace.status": "状态",
    "trace.recipients": "接收人数",
    "trace.channels": "渠道",
    "trace.send_at": "定时发送",
    "trace.expires_at": "过期时间",
    "trace.deliveries": "投递",
    "trace.truncated": "仅显示前面的部分投递。",
    "trace.attempt": "第 {n} 次尝试",
    "trace.read": "已读",
    "trace.no_deliveries": "暂无投递。",
    "trace.counts": "各状态的投递数",
    "notice.account_created": "账号已创建。",
    "notice.account_disabled": "账号已停用，其会话已全部结束。",
    "notice.account_enabled": "账号已启用。",
    "notice.password_set": "密码已设置，该账号的会话已全部结束。",
}

MESSAGES: dict[str, dict[str, str]] = {"en": EN, "zh-CN": ZH}
NOTICES = frozenset(key for key in EN if key.startswith("notice."))
"""The keys a redirect may name in ``?notice=`` (anything else in that parameter is ignored)."""


class Translator:
    """``t(key, **params)``: the message in this locale, else in English, else the key itself."""

    def __init__(self, locale: str) -> None:
        self.locale = locale if locale in MESSAGES else "en"
        self._messages = MESSAGES[self.locale]

    def __call__(self, key: str, **params: object) -> str:
        text = self._messages.get(key) or EN.get(key) or key
        return text.format(**params) if params else text

    def has(self, key: str) -> bool:
        return key in self._messages


def supported(tag: str) -> str | None:
    """The console locale for a language tag: ``zh``, ``zh-CN``, ``zh-Hans``… → zh-CN; ``en-*`` → en."""
    primary = tag.strip().lower().split("-", 1)[0].split("_", 1)[0]
    return {"zh": "zh-CN", "en": "en"}.get(primary)


def from_accept_language(header: str) -> str | None:
    """The first supported language of an ``Accept-Language`` header, by its q values."""
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:30]):
        tag, _, params = part.partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        locale = supported(tag)
        if locale is not None and quality > 0:
            choices.append((-quality, index, locale))
    return min(choices)[2] if choices else None


def pick_locale(request: Request, default_locale: str) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in MESSAGES:
        return chosen
    return from_accept_language(request.headers.get("accept-language", "")) or supported(default_locale) or "en"
