/*
 * dirtier: the lab's guest workload. It writes guest memory at a set rate and pattern, seeded, so
 * migtrace's importer (src/import/qemu/dirtier.ts) can re-create every write exactly, and it
 * prints the guest-physical frames behind its working set so those writes get guest-physical
 * addresses.
 *
 *   dirtier -w WS_MIB -r PAGES_PER_S -p random|hotspot|seq [-H HOT_PCT] [-P HOT_PROB_PCT]
 *           [-i REPORT_MS] [-f random|zero] [-t DURATION_S] [-s SEED] [-m] [-M CHECK_MS] [-b]
 *
 *   -w  working set, MiB (mmap'd, pre-faulted, filled once)
 *   -r  page writes per second; 0 = none after the fill, -1 = as fast as possible
 *   -p  random: a uniform page; hotspot: with probability P % a page of the first H % of the set,
 *       else a uniform page; seq: a sequential sweep that wraps around
 *   -f  fill: random (every page non-zero, so QEMU sends it as a normal page) or zero
 *   -s  seed of the xorshift64 generator (rng = strtoull(SEED) | 1)
 *   -m  print the page map (runs of guest frames backing the working set), and print it again
 *       whenever it changes (see below)
 *   -M  how often (ms) to look for a changed map, default 100
 *   -b  pace by spinning on the clock instead of usleep(): the task never sleeps, so it arms no
 *       hrtimer on its kernel stack (see docs/lab.md, "the destination guest crashes")
 *
 * Output (one line each; the importer parses these, keep them stable):
 *   DIRTIER CONFIG ws_mib=.. pages=.. rate=.. pattern=.. hot_pct=.. hot_prob=.. fill=.. ...
 *   DIRTIER FILLED ms=..
 *   DIRTIER PFNMAP epoch=E total=T runs=R     map epoch E, valid from write number T on
 *   DIRTIER PFNRUNS V@P V+N@P ...              R runs in all, 12 a line, hex: working-set page V
 *                                              (N pages from V) on frame P (P..P+N-1)
 *   DIRTIER PFNMAP epoch=E end
 *   DIRTIER READY
 *   DIRTIER t=<s> writes=<n> distinct=<d> total=<cumulative> rate=<n/s>   every REPORT_MS
 *
 * Epoch 0 is the whole map. A later epoch lists only the runs of pages whose frame changed: the
 * guest kernel migrated them (a virtio-mem unplug empties its memory blocks by migrating movable
 * pages; compaction does the same). Re-reading /proc/self/pagemap costs a few ms per 100 MiB under
 * TCG, so the map is re-read only when /proc/vmstat's pgmigrate_success moved since the last look,
 * and in any case every 5 s; a page seen mid-migration (not present) is looked at again next time.
 * An epoch's writes are those from `total` on; writes between the kernel moving a page and the
 * next look (at most CHECK_MS) still go to the new frame while the printed map says the old one.
 *
 * Each write stores an 8-byte counter at word (counter % 512) of the page.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define U64_PER_PAGE (PAGE / 8)
#define PM_PRESENT (1ULL << 63)
#define PM_PFN_MASK ((1ULL << 55) - 1)
#define PAGEMAP_CHUNK 4096 /* entries per pread */
#define FULL_CHECK_NS 5000000000ULL

static uint64_t rng_state = 88172645463325252ULL;

/* xorshift64 (13, 7, 17); the importer re-implements it bit for bit. */
static inline uint64_t xs64(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* The page map: the frame of each working-set page as last printed (0 = never seen present). */
struct pfnmap {
	int fd;
	uint64_t vstart, npages, epoch;
	uint64_t *pfn, *fresh, *buf;
	uint64_t last_migrations, last_full_ns;
	int unsettled; /* some page was not present at the last look */
};

/* pgmigrate_success from /proc/vmstat: pages the kernel has migrated since boot. */
static uint64_t pages_migrated(void)
{
	char line[128];
	uint64_t v = 0;
	FILE *f = fopen("/proc/vmstat", "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "pgmigrate_success %lu", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* Read every page's frame into map->fresh (0 where not present). */
static int read_pagemap(struct pfnmap *m)
{
	m->unsettled = 0;
	for (uint64_t i = 0; i < m->npages; i += PAGEMAP_CHUNK) {
		uint64_t n = m->npages - i < PAGEMAP_CHUNK ? m->npages - i : PAGEMAP_CHUNK;
		ssize_t want = (ssize_t)(n * 8);
		if (pread(m->fd, m->buf, want, (off_t)((m->vstart + i) * 8)) != want)
			return -1;
		for (uint64_t k = 0; k < n; k++) {
			uint64_t e = m->buf[k];
			m->fresh[i + k] = (e & PM_PRESENT) ? (e & PM_PFN_MASK) : 0;
			if (!(e & PM_PRESENT))
				m->unsettled = 1;
		}
	}
	return 0;
}

/*
 * Print the runs of pages whose frame differs from the printed map (all of them for epoch 0),
 * then adopt the new frames. Pages not present now keep their old frame until the next look.
 * Runs go RUNS_PER_LINE to a line, in hex (`v@pfn` for one page, `v+n@pfn` for n): the console is
 * a 16550 UART, slow under TCG (~80 KB/s here), and the dirtier makes no writes while it prints.
 */
#define RUNS_PER_LINE 12
static void print_changes(struct pfnmap *m, uint64_t total)
{
	uint64_t runs = 0;
	for (int pass = 0; pass < 2; pass++) {
		uint64_t run_v = 0, run_pfn = 0, run_len = 0, on_line = 0;
		if (pass == 1)
			printf("DIRTIER PFNMAP epoch=%lu total=%lu runs=%lu\n", (unsigned long)m->epoch,
			       (unsigned long)total, (unsigned long)runs);
		runs = 0;
		for (uint64_t i = 0; i <= m->npages; i++) {
			uint64_t f = i < m->npages ? m->fresh[i] : 0;
			int changed = i < m->npages && f != 0 && f != m->pfn[i];
			if (run_len && changed && f == run_pfn + run_len) {
				run_len++;
				continue;
			}
			if (run_len) {
				runs++;
				if (pass == 1) {
					if (on_line == 0)
						fputs("DIRTIER PFNRUNS", stdout);
					if (run_len == 1)
						printf(" %lx@%lx", (unsigned long)run_v, (unsigned long)run_pfn);
					else
						printf(" %lx+%lx@%lx", (unsigned long)run_v, (unsigned long)run_len,
						       (unsigned long)run_pfn);
					if (++on_line == RUNS_PER_LINE) {
						printf("\n");
						on_line = 0;
					}
				}
			}
			run_len = 0;
			if (changed) {
				run_v = i;
				run_pfn = f;
				run_len = 1;
			}
		}
		if (pass == 1 && on_line > 0)
			printf("\n");
	}
	printf("DIRTIER PFNMAP epoch=%lu end\n", (unsigned long)m->epoch);
	fflush(stdout);
	for (uint64_t i = 0; i < m->npages; i++)
		if (m->fresh[i])
			m->pfn[i] = m->fresh[i];
	m->epoch++;
}

static int pfnmap_open(struct pfnmap *m, volatile uint64_t *mem, uint64_t npages)
{
	memset(m, 0, sizeof *m);
	m->fd = open("/proc/self/pagemap", O_RDONLY);
	if (m->fd < 0) {
		printf("DIRTIER PFNMAP error=open:%s\n", strerror(errno));
		return -1;
	}
	m->vstart = (uint64_t)(uintptr_t)mem / PAGE;
	m->npages = npages;
	m->pfn = calloc(npages, 8);
	m->fresh = calloc(npages, 8);
	m->buf = calloc(PAGEMAP_CHUNK, 8);
	if (!m->pfn || !m->fresh || !m->buf) {
		printf("DIRTIER PFNMAP error=calloc\n");
		return -1;
	}
	m->last_migrations = pages_migrated();
	m->last_full_ns = now_ns();
	if (read_pagemap(m) < 0) {
		printf("DIRTIER PFNMAP error=pread\n");
		return -1;
	}
	print_changes(m, 0);
	return 0;
}

/* Called every CHECK_MS: re-read the map when pages may have moved, print what changed. */
static void pfnmap_check(struct pfnmap *m, uint64_t total)
{
	uint64_t migrated = pages_migrated(), now = now_ns();
	if (migrated == m->last_migrations && !m->unsettled && now - m->last_full_ns < FULL_CHECK_NS)
		return;
	m->last_migrations = migrated;
	m->last_full_ns = now;
	if (read_pagemap(m) < 0)
		return;
	for (uint64_t i = 0; i < m->npages; i++)
		if (m->fresh[i] && m->fresh[i] != m->pfn[i]) {
			print_changes(m, total);
			return;
		}
}

/* Sleep (or spin, with -b) for about 0.5 ms: the pacing step. */
static void pause_a_little(int spin)
{
	if (!spin) {
		usleep(500);
		return;
	}
	uint64_t until = now_ns() + 500000;
	while (now_ns() < until)
		;
}

int main(int argc, char **argv)
{
	long ws_mib = 256, rate = 10000, hot_pct = 10, hot_prob = 90;
	long report_ms = 1000, duration_s = 0, check_ms = 100;
	const char *pattern = "random", *fill = "random";
	int want_map = 0, spin = 0, opt;

	while ((opt = getopt(argc, argv, "w:r:p:H:P:i:f:t:s:mM:b")) != -1) {
		switch (opt) {
		case 'w': ws_mib = atol(optarg); break;
		case 'r': rate = atol(optarg); break;
		case 'p': pattern = optarg; break;
		case 'H': hot_pct = atol(optarg); break;
		case 'P': hot_prob = atol(optarg); break;
		case 'i': report_ms = atol(optarg); break;
		case 'f': fill = optarg; break;
		case 't': duration_s = atol(optarg); break;
		case 's': rng_state = strtoull(optarg, NULL, 0) | 1; break;
		case 'm': want_map = 1; break;
		case 'M': check_ms = atol(optarg); break;
		case 'b': spin = 1; break;
		default:
			fprintf(stderr, "usage: see the comment at the top of dirtier.c\n");
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	int pat = !strcmp(pattern, "seq") ? 2 : !strcmp(pattern, "hotspot") ? 1 : 0;
	uint64_t npages = (uint64_t)ws_mib * 1024 * 1024 / PAGE;
	uint64_t nhot = npages * hot_pct / 100;
	if (nhot == 0)
		nhot = 1;
	printf("DIRTIER CONFIG ws_mib=%ld pages=%lu rate=%ld pattern=%s hot_pct=%ld hot_prob=%ld "
	       "fill=%s report_ms=%ld duration_s=%ld check_ms=%ld pace=%s\n",
	       ws_mib, (unsigned long)npages, rate, pattern, hot_pct, hot_prob, fill, report_ms,
	       duration_s, check_ms, spin ? "spin" : "sleep");

	if (npages == 0) {
		printf("DIRTIER READY idle (no working set)\n");
		for (;;)
			pause();
	}

	uint64_t t0 = now_ns();
	volatile uint64_t *mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (mem == MAP_FAILED) {
		printf("DIRTIER ERROR mmap %s\n", strerror(errno));
		return 1;
	}
	/* 4 KiB pages only: one PFN run per page range, and no THP collapse moving frames. */
	madvise((void *)mem, npages * PAGE, MADV_NOHUGEPAGE);
	if (!strcmp(fill, "zero")) {
		for (uint64_t i = 0; i < npages; i++)
			mem[i * U64_PER_PAGE] = 0; /* fault in, keep zero */
	} else {
		for (uint64_t i = 0; i < npages * U64_PER_PAGE; i++)
			mem[i] = xs64() | 1;
	}
	printf("DIRTIER FILLED ms=%lu\n", (unsigned long)((now_ns() - t0) / 1000000));

	struct pfnmap map;
	int mapping = want_map && pfnmap_open(&map, mem, npages) == 0;

	uint8_t *seen = calloc((npages + 7) / 8, 1);
	uint64_t counter = 0, total = 0, interval_writes = 0, distinct = 0, seq = 0;
	uint64_t start = now_ns(), last_report = start, last_check = start, done = 0;
	uint64_t report_ns = (uint64_t)report_ms * 1000000ULL, check_ns = (uint64_t)check_ms * 1000000ULL;
	printf("DIRTIER READY\n");

	for (;;) {
		uint64_t now = now_ns();
		if (now - last_report >= report_ns) {
			double dt = (now - last_report) / 1e9;
			printf("DIRTIER t=%.3f writes=%lu distinct=%lu total=%lu rate=%.0f\n",
			       (now - start) / 1e9, (unsigned long)interval_writes,
			       (unsigned long)distinct, (unsigned long)total, interval_writes / dt);
			interval_writes = 0;
			distinct = 0;
			memset(seen, 0, (npages + 7) / 8);
			last_report = now;
			if (duration_s > 0 && now - start >= (uint64_t)duration_s * 1000000000ULL)
				break;
		}
		if (mapping && now - last_check >= check_ns) {
			pfnmap_check(&map, total);
			last_check = now;
		}
		uint64_t batch;
		if (rate < 0) {
			batch = 4096;
		} else if (rate == 0) {
			usleep(100000);
			continue;
		} else {
			uint64_t target = (now - start) / 1000ULL * (uint64_t)rate / 1000000ULL;
			/* After a long pause (the migration's downtime) do not burst: catch up at most
			 * 50 ms worth of writes. */
			uint64_t cap = (uint64_t)rate / 20 + 1;
			if (target > done + cap)
				done = target - cap;
			if (target <= done) {
				pause_a_little(spin);
				continue;
			}
			batch = target - done;
			if (batch > 4096)
				batch = 4096;
		}
		for (uint64_t k = 0; k < batch; k++) {
			uint64_t pg;
			if (pat == 2) {
				pg = seq++;
				if (seq >= npages)
					seq = 0;
			} else if (pat == 1 && (xs64() % 100) < (uint64_t)hot_prob) {
				pg = xs64() % nhot;
			} else {
				pg = xs64() % npages;
			}
			counter++;
			mem[pg * U64_PER_PAGE + (counter & (U64_PER_PAGE - 1))] = counter;
			if (!(seen[pg >> 3] & (1u << (pg & 7)))) {
				seen[pg >> 3] |= (uint8_t)(1u << (pg & 7));
				distinct++;
			}
		}
		done += batch;
		total += batch;
		interval_writes += batch;
	}
	printf("DIRTIER DONE total=%lu\n", (unsigned long)total);
	return 0;
}
