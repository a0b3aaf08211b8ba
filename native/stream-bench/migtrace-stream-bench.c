/*
 * migtrace-stream-bench: the CPU time QEMU's migration stream spends per page, measured in-process
 * with the libraries QEMU links (the system zlib and libzstd), in the call shapes QEMU 7.2 uses.
 * Built and driven by scripts/measure-compression.ts (docs/stream.md); not part of the CLI.
 *
 *   migtrace-stream-bench compress zlib|zstd LEVEL PAGES_PER_PACKET REPS FILE
 *     FILE holds whole 4 KiB pages. Each rep opens one stream (a channel's, made once at setup:
 *     zlib_send_setup's deflateInit / zstd_send_setup's ZSTD_initCStream) and sends every page of
 *     FILE through it in packets of PAGES_PER_PACKET, as a channel's send_prepare does:
 *     - zlib (multifd-zlib.c zlib_send_prepare, 7.1+): the page is first copied into a buffer of
 *       one page (the guest may write it meanwhile), then deflate() with Z_NO_FLUSH, Z_SYNC_FLUSH
 *       for the packet's last page, into the packet's output buffer (twice the packet's size);
 *     - zstd (multifd-zstd.c zstd_send_prepare): ZSTD_compressStream2 straight from the page,
 *       ZSTD_e_continue, ZSTD_e_flush for the packet's last page.
 *     The stream is never reset between packets (QEMU does not either).
 *     Prints one line per rep: "rep <cpu ns> <wall ns> <pages> <compressed bytes>", CPU time of
 *     this thread (CLOCK_THREAD_CPUTIME_ID) over the packet loop only.
 *
 *   migtrace-stream-bench xbzrle WORDS HOT_PAGES REPS SEED
 *     save_xbzrle_page's work for pages found in the cache (migration/ram.c, QEMU 7.2): find the
 *     page's slot (page_cache.c: slot = page & (slots - 1), compare its address, refresh its
 *     age), copy the guest page into a scratch page (XBZRLE.current_buf), encode it against the
 *     cached copy into a one-page buffer (xbzrle_encode_buffer's format, our own encoder), copy
 *     the scratch page back into the cache (the cache then holds what was sent). HOT_PAGES guest
 *     pages each get WORDS 8-byte words overwritten between rounds, as the lab's dirtier does
 *     (lab/guest/dirtier.c: one uint64 at word (counter & 511) = counter). The cache is 64 MiB
 *     (xbzrle-cache-size's default, the lab's) and the guest RAM 256 MiB (the dirtier's working
 *     set), so the copies run from memory as QEMU's do, not from a warm L1.
 *     Also a miss: cache_insert's copy of a page into its slot.
 *     Prints per rep: "hit <cpu ns> <pages> <encoded bytes> <overflows>" and "miss <cpu ns> <pages>".
 *
 *   migtrace-stream-bench encode OLD NEW
 *     The XBZRLE delta length of page NEW against page OLD (files of 4 KiB): 0 = unchanged, -1 =
 *     overflow. test/replay/stream-bench.test.ts checks it against the replay's encodedLength.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include <zstd.h>

#define PAGE 4096

static uint64_t ns_of(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void die(const char *msg)
{
	fprintf(stderr, "migtrace-stream-bench: %s\n", msg);
	exit(2);
}

static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		die("cannot open the page file");
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	if (n <= 0 || n % PAGE)
		die("the page file is not whole 4 KiB pages");
	unsigned char *b = aligned_alloc(64, (size_t)n);
	if (!b || fread(b, 1, (size_t)n, f) != (size_t)n)
		die("cannot read the page file");
	fclose(f);
	*len = (size_t)n;
	return b;
}

static int compress_cmd(int argc, char **argv)
{
	if (argc != 7)
		die("usage: compress zlib|zstd LEVEL PAGES_PER_PACKET REPS FILE");
	int zstd = !strcmp(argv[2], "zstd");
	if (!zstd && strcmp(argv[2], "zlib"))
		die("method must be zlib or zstd");
	int level = atoi(argv[3]), per_packet = atoi(argv[4]), reps = atoi(argv[5]);
	if (per_packet < 1 || reps < 1)
		die("PAGES_PER_PACKET and REPS must be positive");
	size_t len;
	unsigned char *pages = read_file(argv[6], &len);
	size_t npages = len / PAGE;
	size_t out_len = (size_t)per_packet * PAGE * 2;
	unsigned char *out = malloc(out_len), *copy = aligned_alloc(64, PAGE);
	if (!out || !copy)
		die("out of memory");

	for (int rep = 0; rep < reps; rep++) {
		z_stream zs;
		ZSTD_CStream *zcs = NULL;
		if (zstd) {
			zcs = ZSTD_createCStream();
			if (!zcs || ZSTD_isError(ZSTD_initCStream(zcs, level)))
				die("ZSTD_initCStream failed");
		} else {
			memset(&zs, 0, sizeof zs);
			if (deflateInit(&zs, level) != Z_OK)
				die("deflateInit failed");
		}
		uint64_t total = 0;
		uint64_t c0 = ns_of(CLOCK_THREAD_CPUTIME_ID), w0 = ns_of(CLOCK_MONOTONIC);
		for (size_t first = 0; first < npages; first += (size_t)per_packet) {
			size_t n = npages - first < (size_t)per_packet ? npages - first : (size_t)per_packet;
			size_t pos = 0;
			for (size_t i = 0; i < n; i++) {
				const unsigned char *page = pages + (first + i) * PAGE;
				int last = i == n - 1;
				if (zstd) {
					ZSTD_outBuffer ob = {out, out_len, pos};
					ZSTD_inBuffer ib = {page, PAGE, 0};
					size_t r;
					do {
						r = ZSTD_compressStream2(zcs, &ob, &ib, last ? ZSTD_e_flush : ZSTD_e_continue);
					} while (!ZSTD_isError(r) && r > 0 && ib.pos < ib.size && ob.pos < ob.size);
					if (ZSTD_isError(r) || ib.pos < ib.size)
						die("ZSTD_compressStream2 failed");
					pos = ob.pos;
				} else {
					memcpy(copy, page, PAGE);
					zs.next_in = copy;
					zs.avail_in = PAGE;
					zs.next_out = out + pos;
					zs.avail_out = (uInt)(out_len - pos);
					int r;
					do {
						r = deflate(&zs, last ? Z_SYNC_FLUSH : Z_NO_FLUSH);
					} while (r == Z_OK && zs.avail_in && zs.avail_out);
					if (r != Z_OK || zs.avail_in)
						die("deflate failed");
					pos = out_len - zs.avail_out;
				}
			}
			total += pos;
		}
		uint64_t c1 = ns_of(CLOCK_THREAD_CPUTIME_ID), w1 = ns_of(CLOCK_MONOTONIC);
		printf("rep %llu %llu %zu %llu\n", (unsigned long long)(c1 - c0), (unsigned long long)(w1 - w0), npages,
		       (unsigned long long)total);
		if (zstd)
			ZSTD_freeCStream(zcs);
		else
			deflateEnd(&zs);
	}
	return 0;
}

/* One ULEB128 run length (at most 4096 for a page: 1 or 2 bytes). */
static int put_len(unsigned char *d, uint32_t v)
{
	if (v < 128) {
		d[0] = (unsigned char)v;
		return 1;
	}
	d[0] = (unsigned char)(0x80 | (v & 0x7f));
	d[1] = (unsigned char)(v >> 7);
	return 2;
}

static inline uint64_t load64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/*
 * The XBZRLE delta of `cur` against `old` (n bytes, a multiple of 8) into `dst` (cap bytes):
 * alternating runs of equal and differing bytes, each run's length as a ULEB128 and a differing
 * run's bytes after its length; a trailing equal run is not written. 0 when nothing differs, -1
 * when it would not fit (fewer than 2 bytes left before a length, or a run's bytes past cap).
 * Runs are found 8 bytes at a time: an equal word (xor 0) continues an equal run; a word whose xor
 * has no zero byte continues a differing run; the word where a run ends is finished byte by byte.
 */
static int encode(const unsigned char *old, const unsigned char *cur, int n, unsigned char *dst, int cap)
{
	const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
	int d = 0, i = 0;
	while (i < n) {
		if (d + 2 > cap)
			return -1;
		int start = i;
		while (i + 8 <= n && load64(old + i) == load64(cur + i))
			i += 8;
		while (i < n && old[i] == cur[i])
			i++;
		if (i - start == n)
			return 0;
		if (i == n)
			return d;
		d += put_len(dst + d, (uint32_t)(i - start));
		if (d + 2 > cap)
			return -1;
		start = i;
		/* Byte by byte to the next word boundary, then whole words with no equal byte. */
		while (i < n && (i & 7) && old[i] != cur[i])
			i++;
		if (!(i & 7)) {
			while (i + 8 <= n) {
				uint64_t x = load64(old + i) ^ load64(cur + i);
				if ((x - ones) & ~x & highs)
					break; /* some byte of this word is equal */
				i += 8;
			}
			while (i < n && old[i] != cur[i])
				i++;
		}
		int len = i - start;
		d += put_len(dst + d, (uint32_t)len);
		if (d + len > cap)
			return -1;
		memcpy(dst + d, cur + start, (size_t)len);
		d += len;
	}
	return d;
}

static uint64_t rng = 88172645463325252ULL;
static uint64_t xs64(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int xbzrle_cmd(int argc, char **argv)
{
	if (argc != 6)
		die("usage: xbzrle WORDS HOT_PAGES REPS SEED");
	int words = atoi(argv[2]), hot = atoi(argv[3]), reps = atoi(argv[4]);
	rng = strtoull(argv[5], NULL, 10) | 1;
	const size_t ram_pages = 65536, slots = 16384; /* 256 MiB of guest RAM, a 64 MiB cache */
	if (words < 1 || words > 512 || hot < 1 || (size_t)hot > slots || reps < 1)
		die("WORDS 1..512, HOT_PAGES 1..16384, REPS > 0");
	unsigned char *ram = aligned_alloc(4096, ram_pages * PAGE);
	unsigned char *cache = aligned_alloc(4096, slots * PAGE);
	uint64_t *slot_addr = malloc(slots * sizeof *slot_addr), *slot_age = malloc(slots * sizeof *slot_age);
	unsigned char *current = aligned_alloc(64, PAGE), *encoded = aligned_alloc(64, PAGE);
	if (!ram || !cache || !slot_addr || !slot_age || !current || !encoded)
		die("out of memory");
	uint64_t *r64 = (uint64_t *)ram;
	memset(cache, 0, slots * PAGE); /* fault the cache in, as QEMU's is by its first round */
	for (size_t i = 0; i < ram_pages * PAGE / 8; i++)
		r64[i] = xs64() | 1; /* the dirtier's random fill */
	/* The hot set is the working set's first pages (hotspot pattern); cached after round 1. */
	for (size_t s = 0; s < slots; s++)
		slot_addr[s] = UINT64_MAX;
	for (int p = 0; p < hot; p++) {
		memcpy(cache + (size_t)(p & (slots - 1)) * PAGE, ram + (size_t)p * PAGE, PAGE);
		slot_addr[p & (slots - 1)] = (uint64_t)p;
		slot_age[p & (slots - 1)] = 1;
	}
	uint64_t counter = 0;
	volatile uint64_t sink = 0;
	for (int rep = 0; rep < reps; rep++) {
		/* The guest's writes since the last round (not timed). */
		for (int p = 0; p < hot; p++)
			for (int w = 0; w < words; w++) {
				counter++;
				r64[(size_t)p * 512 + (xs64() & 511)] = counter;
			}
		/* Evict the CPU caches' copy of the pages, as a round of 1 GiB would. */
		for (size_t i = (size_t)hot * PAGE / 8; i < ram_pages * PAGE / 8; i += 8)
			sink += r64[i];
		uint64_t gen = (uint64_t)rep + 2, bytes = 0, overflow = 0;
		uint64_t c0 = ns_of(CLOCK_THREAD_CPUTIME_ID);
		for (int p = 0; p < hot; p++) {
			size_t s = (size_t)p & (slots - 1);
			if (slot_addr[s] != (uint64_t)p)
				die("bug: hot page not cached");
			slot_age[s] = gen;
			unsigned char *cached = cache + s * PAGE;
			memcpy(current, ram + (size_t)p * PAGE, PAGE);
			int len = encode(cached, current, PAGE, encoded, PAGE);
			if (len < 0)
				overflow++;
			else
				bytes += (uint64_t)len;
			if (len != 0)
				memcpy(cached, current, PAGE);
			sink += encoded[0];
		}
		uint64_t c1 = ns_of(CLOCK_THREAD_CPUTIME_ID);
		printf("hit %llu %d %llu %llu\n", (unsigned long long)(c1 - c0), hot, (unsigned long long)bytes,
		       (unsigned long long)overflow);
		/* A miss: cache_insert copies the page into its slot (pages beyond the hot set). */
		for (size_t i = 0; i < ram_pages * PAGE / 8; i += 8 * 7)
			sink += r64[i];
		size_t base = (size_t)hot + (size_t)rep * 1024 % (ram_pages - (size_t)hot - 4096);
		c0 = ns_of(CLOCK_THREAD_CPUTIME_ID);
		for (size_t k = 0; k < 4096; k++) {
			size_t p = base + k, s = p & (slots - 1);
			slot_addr[s] = p;
			slot_age[s] = gen;
			memcpy(cache + s * PAGE, ram + p * PAGE, PAGE);
		}
		c1 = ns_of(CLOCK_THREAD_CPUTIME_ID);
		printf("miss %llu %d\n", (unsigned long long)(c1 - c0), 4096);
		/* Put the hot set back in the cache for the next round. */
		for (int p = 0; p < hot; p++) {
			memcpy(cache + (size_t)(p & (slots - 1)) * PAGE, ram + (size_t)p * PAGE, PAGE);
			slot_addr[p & (slots - 1)] = (uint64_t)p;
		}
	}
	return sink == 42 ? 1 : 0;
}

static int encode_cmd(int argc, char **argv)
{
	if (argc != 4)
		die("usage: encode OLD NEW");
	size_t a, b;
	unsigned char *old = read_file(argv[2], &a), *cur = read_file(argv[3], &b);
	if (a != PAGE || b != PAGE)
		die("OLD and NEW must be one 4 KiB page each");
	unsigned char dst[PAGE];
	printf("%d\n", encode(old, cur, PAGE, dst, PAGE));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "encode"))
		return encode_cmd(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "compress"))
		return compress_cmd(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "xbzrle"))
		return xbzrle_cmd(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "versions")) {
		printf("zlib %s\nzstd %s\n", zlibVersion(), ZSTD_versionString());
		return 0;
	}
	die("usage: compress ... | xbzrle ... | encode OLD NEW | versions");
	return 2;
}
