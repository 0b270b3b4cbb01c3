# awsnet — build, install, test, bench, demo, deps.
# Variables follow what LuaRocks passes to a "make" build (PREFIX, LUADIR, LIBDIR, BINDIR, CFLAGS,
# LIBFLAG, LUA_INCDIR), so `luarocks make` and a plain `make install` install the same files.

LUA        ?= lua5.4
PREFIX     ?= /usr/local
LUADIR     ?= $(PREFIX)/share/lua/5.4
LIBDIR     ?= $(PREFIX)/lib/lua/5.4
BINDIR     ?= $(PREFIX)/bin
LUA_INCDIR ?= /usr/include/lua5.4
CC         ?= cc
CFLAGS     ?= -O2 -g
LIBFLAG    ?= -shared
BUILD      ?= build

PKGS      := libcurl openssl libmariadb expat libcares
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lcurl -lssl -lcrypto -lmariadb -lexpat -lcares)
WARN      := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes \
             -Wformat=2 -Wvla
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(WARN) -I$(LUA_INCDIR) -Icsrc $(PKG_CFLAGS) $(CFLAGS)

SRC  := $(sort $(wildcard csrc/*.c csrc/reach/*.c))
OBJ   = $(SRC:%.c=$(BUILD)/obj/%.o)
CORE  = $(BUILD)/awsnet/core.so

BUSTED = $(LUA) /usr/bin/busted
SAN_CFLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

.PHONY: all build install uninstall deps test check lint bench demo soak fuzz clean
all: build
build: $(CORE)

$(CORE): $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) $(ALL_CFLAGS) -o $@ $(OBJ) $(PKG_LIBS) $(LDFLAGS)

$(BUILD)/obj/%.o: %.c $(wildcard csrc/*.h csrc/reach/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

install: $(CORE)
	install -d $(DESTDIR)$(LUADIR)/awsnet $(DESTDIR)$(LIBDIR)/awsnet $(DESTDIR)$(BINDIR)
	cd lua && find awsnet -type d -exec install -d $(DESTDIR)$(LUADIR)/{} \;
	cd lua && find awsnet -type f \( -name '*.lua' -o -name '*.py' \) -exec install -m 644 {} $(DESTDIR)$(LUADIR)/{} \;
	install -m 755 $(CORE) $(DESTDIR)$(LIBDIR)/awsnet/core.so
	install -m 755 bin/awsnet $(DESTDIR)$(BINDIR)/awsnet

uninstall:
	rm -rf $(DESTDIR)$(LUADIR)/awsnet $(DESTDIR)$(LIBDIR)/awsnet $(DESTDIR)$(BINDIR)/awsnet

# Debian packages for the build, the tests, the benchmarks and the demo (apt only when missing).
deps:
	@sh tools/deps.sh

lint:
	luacheck -q $(wildcard lua bin tests bench examples)

# The tests run against the freshly built core in $(BUILD); a test that needs a service starts it.
test: deps build
	luacheck -q $(wildcard lua bin tests bench examples)
	$(BUSTED)

# The same suite with the C core built under ASan+UBSan; any report fails the run.
check: deps
	$(MAKE) BUILD=build-san CFLAGS="$(SAN_CFLAGS)" LDFLAGS="-fsanitize=address,undefined" build
	AWSNET_BUILD=build-san AWSNET_SANITIZED=1 \
	LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	$(LUA) /usr/bin/busted

# The benchmarks' C peers (bench/*/c_peer.c): libmariadb alone, without Lua, side by side.
$(BUILD)/bench/insert_c_peer: bench/insert/c_peer.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) $(shell pkg-config --cflags libmariadb) $(CFLAGS) -o $@ $< \
		$(shell pkg-config --libs libmariadb)

bench: deps build $(BUILD)/bench/insert_c_peer
	@for b in bench/*/run.lua; do [ -f "$$b" ] && $(LUA) $$b || exit 1; done; true

demo: deps build
	$(LUA) bin/awsnet demo

# The reliability specs of the scenario, many more runs than `make test` does (20 seeds under
# faults, 10 SIGKILLs at random steps; AWSNET_SOAK_RUNS=N to change).
soak: deps build
	AWSNET_SOAK_RUNS=$${AWSNET_SOAK_RUNS:-20} $(BUSTED) tests/scenario_reliability_spec.lua

fuzz:
	@sh tools/fuzz.sh

clean:
	rm -rf build build-san build-fuzz
