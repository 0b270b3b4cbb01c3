/* The joining connection a blocked path assumes past a missing route (reach/blocked.h). */
#include "reach/blocked.h"

int32_t blocked_goal_vpc(const model *m, int32_t dst_eni, addr_t dst_ip)
{
    if (dst_eni >= 0 && (size_t)dst_eni < m->enis.n)
        return m->subnets.v[m->enis.v[dst_eni].subnet].vpc;
    int32_t s = model_subnet_anywhere(m, dst_ip);
    return s < 0 ? -1 : m->subnets.v[s].vpc;
}

int32_t blocked_tgw_attachment(const model *m, int32_t tgw, int32_t goal)
{
    if (goal < 0 || (size_t)goal >= m->vpcs.n)
        return -1;
    for (int32_t a = m->vpcs.v[goal].first_att; a >= 0; a = m->atts.v[a].next_in_vpc) {
        if (m->atts.v[a].tgw == tgw)
            return a;
    }
    return -1;
}

int blocked_joining(const model *m, int32_t vpc, int32_t goal, route_t *via)
{
    int n = 0;
    if (goal < 0 || vpc < 0 || goal == vpc)
        return 0;
    for (int32_t a = m->vpcs.v[vpc].first_att; a >= 0 && n < 2; a = m->atts.v[a].next_in_vpc) {
        int32_t tgw = m->atts.v[a].tgw;
        if (blocked_tgw_attachment(m, tgw, goal) < 0)
            continue;
        if (n++ == 0)
            *via = (route_t){ .kind = RT_TGW, .target = tgw, .rule = -1, .table = -1 };
    }
    for (size_t p = 0; p < m->pcxs.n && n < 2; p++) {
        const pcx_t *x = &m->pcxs.v[p];
        if (!((x->vpc_a == vpc && x->vpc_b == goal) || (x->vpc_b == vpc && x->vpc_a == goal)))
            continue;
        if (n++ == 0)
            *via = (route_t){ .kind = RT_PCX, .target = (int32_t)p, .rule = -1, .table = -1 };
    }
    return n;
}
