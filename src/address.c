/* twin: socket addresses: "1.2.3.4:80" and "[::1]:80". */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/loop.h>

enum { port_max = 65535, host_text_max = 46 };

static bool parse_port(const char *text, uint16_t *port) {
    if (text[0] == '\0') return false;
    uint32_t value = 0;
    for (const char *c = text; *c != '\0'; c++) {
        if (*c < '0' || *c > '9') return false;
        value = value * 10 + (uint32_t)(*c - '0');
        if (value > port_max) return false;
    }
    *port = (uint16_t)value;
    return true;
}

tw_loop_error tw_address_parse(const char *text, tw_address *address) {
    TW_ASSERT(address != NULL);
    memset(address, 0, sizeof(*address));
    if (text == NULL) return tw_loop_address_invalid;
    char host[host_text_max];
    const char *port_text;
    uint8_t family;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':') return tw_loop_address_invalid;
        size_t length = (size_t)(close - text - 1);
        if (length == 0 || length >= sizeof(host)) return tw_loop_address_invalid;
        memcpy(host, text + 1, length);
        host[length] = '\0';
        port_text = close + 2;
        family = 6;
    } else {
        const char *colon = strrchr(text, ':');
        if (colon == NULL || strchr(text, ':') != colon) return tw_loop_address_invalid;
        size_t length = (size_t)(colon - text);
        if (length == 0 || length >= sizeof(host)) return tw_loop_address_invalid;
        memcpy(host, text, length);
        host[length] = '\0';
        port_text = colon + 1;
        family = 4;
    }
    if (!parse_port(port_text, &address->port)) return tw_loop_address_invalid;
    if (inet_pton(family == 4 ? AF_INET : AF_INET6, host, address->ip) != 1) {
        return tw_loop_address_invalid;
    }
    address->family = family;
    return tw_loop_ok;
}

void tw_address_format(const tw_address *address, char *text, size_t text_size) {
    TW_ASSERT(address != NULL && text != NULL && text_size > 0);
    char host[host_text_max];
    if (address->family != 4 && address->family != 6) {
        snprintf(text, text_size, "(no address)");
        return;
    }
    const char *ok = inet_ntop(address->family == 4 ? AF_INET : AF_INET6, address->ip, host,
                               sizeof(host));
    TW_ASSERT(ok != NULL);
    snprintf(text, text_size, address->family == 4 ? "%s:%u" : "[%s]:%u", host,
             (unsigned)address->port);
}

bool tw_address_equal(const tw_address *a, const tw_address *b) {
    TW_ASSERT(a != NULL && b != NULL);
    size_t ip_size = a->family == 4 ? 4 : 16;
    return a->family == b->family && a->port == b->port && memcmp(a->ip, b->ip, ip_size) == 0;
}
