# The e2e test guest: a multiboot kernel, booted with QEMU's -kernel.
#
# Its pattern: the 32-bit word at address 16 MiB + 4*i holds
# (i * 0x9E3779B1) ^ 0x5A5AA5A5 (little endian). Fixed addresses, below
# 16 MiB: 0xFFF000 ready marker (0xC0FFEE01 once the pattern is written),
# 0xFFF004 pass counter, 0xFFF008 the end of the pattern (an address),
# 0xFFF00C the dirty rate it runs with (DEFAULT, MAX or MiB/s), 0xFFF010
# the pages it dirtied with dirty=... (a count that wraps).
# It clears the marker and the counter first: RAM survives a reset, and a
# guest that boots again must show it (its counter starts over).
# e2e/guestcheck.py knows these addresses and checks them.
#
# Its interface is the multiboot command line (the domain's <cmdline>,
# QEMU's -append): "dirty=N", "dirty=max" or nothing.
#
# - Nothing (the default, what the e2e tests use): the pattern fills the
#   4 MiB at 16 MiB; then each pass increments the counter and writes it
#   into every 4 KiB page of the 8 MiB at 20 MiB, without pause.
# - dirty=...: the pattern fills all RAM from 16 MiB to the top of the RAM
#   below 4 GiB (multiboot's mem_upper: the domain's <memory>; QEMU's pc
#   machine puts 3 GiB of a 4 GiB guest there, the rest above 4 GiB stays
#   zero), and the guest dirties that memory page after page, round the
#   region, by writing back the pattern word it reads at the start of each
#   page: the page is dirty for the migration, its contents stay the
#   pattern, so the whole region stays checkable.
#   - dirty=max: as fast as it can; the counter counts the passes.
#   - dirty=N (MiB/s, N >= 0): paced by the PIT (channel 0, mode 2, a full
#     16-bit count: one period is 65536 / 1193182 Hz = 54.9 ms). The guest
#     polls the counter (interrupts stay off), adds the elapsed PIT counts
#     to a budget and dirties one page per 1193182 / N 256ths of a count,
#     at most 256 pages between two looks at the clock; a budget it cannot
#     spend is capped at one period, so a guest that falls behind runs
#     below N, never above. The counter counts PIT periods. dirty=0 is an
#     idle guest: it only counts periods. Time the PIT does not see (the
#     vCPU descheduled for more than a period) is lost, never caught up.

        .set PATTERN, 0x01000000                # the pattern starts at 16 MiB
        .set READY, 0x00FFF000
        .set COUNTER, 0x00FFF004
        .set TOP, 0x00FFF008
        .set RATE, 0x00FFF00C
        .set DIRTIED, 0x00FFF010
        .set DEFAULT, 0xFFFFFFFF                # RATE: no dirty= given
        .set MAX, 0xFFFFFFFE                    # RATE: dirty=max
        .set PIT_HZ, 1193182

        .section .multiboot, "a"
        .align 4
        .long 0x1BADB002                        # multiboot magic
        .long 0x00000003                        # page-align, memory info
        .long -(0x1BADB002 + 0x00000003)        # checksum

        .text
        .globl _start
_start:                                         # %ebx: the multiboot info
        cli
        movl $stack_top, %esp
        movl $0, READY                          # not ready (yet, or again)
        movl $0, COUNTER                        # the counter starts over
        movl $0, DIRTIED

# The command line: the first "dirty=" and what follows it.
        movl $DEFAULT, RATE
        testl $4, (%ebx)                        # flags: a command line?
        jz 9f
        movl 16(%ebx), %esi                     # NUL-terminated
1:      cmpb $0, (%esi)
        je 9f
        cmpl $0x74726964, (%esi)                # "dirt"
        jne 2f
        cmpw $0x3D79, 4(%esi)                   # "y="
        je 3f
2:      incl %esi
        jmp 1b
3:      addl $6, %esi
        movl $MAX, RATE
        cmpb $'m', (%esi)                       # "max"
        je 9f
        xorl %eax, %eax                         # N, decimal
4:      movzbl (%esi), %ecx
        subl $'0', %ecx
        cmpl $9, %ecx
        ja 5f
        imull $10, %eax, %eax
        addl %ecx, %eax
        incl %esi
        jmp 4b
5:      movl %eax, RATE
9:

# The pattern's end: 20 MiB by default, else the top of the RAM below 4 GiB.
        movl $0x01400000, TOP
        cmpl $DEFAULT, RATE
        je 1f
        testl $1, (%ebx)                        # flags: memory info?
        jz 1f
        movl 8(%ebx), %eax                      # mem_upper: KiB above 1 MiB
        shll $10, %eax
        addl $0x00100000, %eax
        movl %eax, TOP

1:      movl $PATTERN, %edi                     # the pattern
        movl TOP, %edx
        subl %edi, %edx
        shrl $2, %edx                           # its words
        xorl %ecx, %ecx
2:      movl %ecx, %eax
        imull $0x9E3779B1, %eax, %eax
        xorl $0x5A5AA5A5, %eax
        movl %eax, (%edi,%ecx,4)
        incl %ecx
        cmpl %edx, %ecx
        jne 2b

        movl $0xC0FFEE01, READY                 # ready marker
        cmpl $DEFAULT, RATE
        je default
        cmpl $MAX, RATE
        je max
        jmp paced

# The default: the counter into every page of the 8 MiB at 20 MiB.
default:
        incl COUNTER                            # pass counter
        movl COUNTER, %eax
        movl $0x01400000, %edi                  # dirty region
        movl $2048, %ecx                        # 2048 pages = 8 MiB
1:      movl %eax, (%edi)
        addl $4096, %edi
        decl %ecx
        jnz 1b
        jmp default

# dirty=max: every page of the pattern, pass after pass.
max:    incl COUNTER
        movl $PATTERN, %edi
1:      movl (%edi), %eax                       # the page's first word,
        movl %eax, (%edi)                       # written back: a dirty page
        incl DIRTIED
        addl $4096, %edi
        cmpl TOP, %edi
        jb 1b
        jmp max

# dirty=N: %ebp the PIT's last count, %esi the budget (256ths of a PIT
# count), %edi the next page, %ebx the cost of a page.
paced:  movb $0x34, %al                         # channel 0, lo/hi, mode 2
        outb %al, $0x43
        xorl %eax, %eax                         # reload 0: 65536 counts
        outb %al, $0x40
        outb %al, $0x40
        movl $1, %ebx                           # the cost of a page: for
        cmpl $0, RATE                           # N pages of 4 KiB per
        je 1f                                   # 1/256 s, PIT_HZ / N
        movl $PIT_HZ, %eax                      # 256ths of a count (N = 0:
        xorl %edx, %edx                         # never spent)
        divl RATE
        orl %eax, %eax
        jz 1f
        movl %eax, %ebx
1:      call pit_count
        movl %eax, %ebp
        xorl %esi, %esi
        movl $PATTERN, %edi

2:      call pit_count                          # now
        movl %ebp, %edx
        subl %eax, %edx
        andl $0xFFFF, %edx                      # counts since the last look
        cmpl %ebp, %eax                         # the count went up: a
        jbe 3f                                  # period ended
        incl COUNTER
3:      movl %eax, %ebp
        cmpl $0, RATE
        je 6f                                   # idle
        shll $8, %edx
        addl %edx, %esi
        cmpl $0x01000000, %esi                  # at most one period's budget
        jbe 4f
        movl $0x01000000, %esi
4:      movl $256, %ecx                         # pages before the next look
5:      cmpl %ebx, %esi
        jb 6f
        subl %ebx, %esi
        movl (%edi), %eax                       # dirty one page, as above
        movl %eax, (%edi)
        incl DIRTIED
        addl $4096, %edi
        cmpl TOP, %edi
        jb 7f
        movl $PATTERN, %edi
7:      decl %ecx
        jnz 5b
        jmp 2b
6:      movl $20000, %ecx                       # nothing to do: a short
8:      decl %ecx                               # wait, so that the PIT is
        jnz 8b                                  # not read without pause
        jmp 2b

# %eax: PIT channel 0's count (latched), 16 bits.
pit_count:
        movb $0x00, %al                         # latch channel 0
        outb %al, $0x43
        inb $0x40, %al
        movb %al, %cl
        inb $0x40, %al
        movb %al, %ch
        movzwl %cx, %eax
        ret

        .bss
        .align 16
        .skip 4096
stack_top:
